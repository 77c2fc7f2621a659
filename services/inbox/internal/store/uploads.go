package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// Upload is a file an agent uploaded to attach to replies.
type Upload struct {
	ID          uuid.UUID `json:"id"`
	Tenant      uuid.UUID `json:"-"`
	ActorKind   string    `json:"-"`
	ActorID     uuid.UUID `json:"-"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	BlobKey     string    `json:"-"`
	CreatedAt   time.Time `json:"-"`
}

// CreateUpload records an upload whose content is already in the blob
// store.
func (s *Store) CreateUpload(ctx context.Context, u Upload) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO inbox.uploads (id, tenant_id, actor_kind, actor_id, name, content_type, size, blob_key, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.ID, u.Tenant, u.ActorKind, u.ActorID, u.Name, u.ContentType, u.Size, u.BlobKey, u.CreatedAt)
	if err != nil {
		return fmt.Errorf("store upload: %w", err)
	}
	return nil
}

// Uploads returns the uploads of tenant among ids, by id; an id of
// another tenant or of nothing is absent from the map.
func Uploads(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]Upload, error) {
	out := map[uuid.UUID]Upload{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.Query(ctx, `SELECT id, name, content_type, size, blob_key FROM inbox.uploads
		WHERE tenant_id = $1 AND id = ANY($2)`, tenant, ids)
	if err != nil {
		return nil, fmt.Errorf("read uploads: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		u := Upload{Tenant: tenant}
		if err := rows.Scan(&u.ID, &u.Name, &u.ContentType, &u.Size, &u.BlobKey); err != nil {
			return nil, fmt.Errorf("read uploads: %w", err)
		}
		out[u.ID] = u
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read uploads: %w", err)
	}
	return out, nil
}

// MessageAttachments returns the conversation of a message of tenant and
// its attachments as stored, blob keys included; ErrNotFound when there
// is no such message.
func (s *Store) MessageAttachments(ctx context.Context, tenant, message uuid.UUID) (uuid.UUID, []events.Attachment, error) {
	var conv uuid.UUID
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT conversation_id, attachments FROM inbox.messages WHERE tenant_id = $1 AND id = $2`,
		tenant, message).Scan(&conv, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil, nil, ErrNotFound
	}
	if err != nil {
		return uuid.Nil, nil, fmt.Errorf("get attachments of message %s: %w", message, err)
	}
	var atts []events.Attachment
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &atts); err != nil {
			return uuid.Nil, nil, fmt.Errorf("decode attachments of message %s: %w", message, err)
		}
	}
	return conv, atts, nil
}
