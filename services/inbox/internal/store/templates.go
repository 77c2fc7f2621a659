package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// This file holds templates of agents' answers ([002]) and the shortcut
// search on their keywords ([004]). The API checks and sanitises what
// admins write; the store keeps it and finds what applies to an agent.

// MaxTemplateAttachments bounds the files kept with a template, as those
// of a reply ([002] "jusqu'à 3 pièces jointes").
const MaxTemplateAttachments = 3

// MaxShortcuts bounds the answer of a shortcut search.
const MaxShortcuts = 10

// TemplateBodies are a template's bodies, one per channel that has one.
type TemplateBodies struct {
	Chat  *TextBody  `json:"chat,omitempty"`
	SMS   *TextBody  `json:"sms,omitempty"`
	Email *EmailBody `json:"email,omitempty"`
}

// TextBody is the body of a text-only channel.
type TextBody struct {
	Text string `json:"text"`
}

// EmailBody is an email body: a subject, and a text and/or sanitised
// HTML.
type EmailBody struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// TemplateAttachment is a file kept with a template: a copy of an upload.
type TemplateAttachment struct {
	// ID is the upload it was copied from.
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	BlobKey     string    `json:"-"`
}

// storedAttachment is a TemplateAttachment as the attachments column
// holds it, blob key included (the erasure's blob sweep looks for it).
type storedAttachment struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	BlobKey     string    `json:"blob_key"`
}

// Event is the attachment as a send command carries it.
func (a TemplateAttachment) Event() events.Attachment {
	return events.Attachment{Name: a.Name, ContentType: a.ContentType, Size: a.Size, BlobKey: a.BlobKey}
}

// Template is a prepared answer of a tenant, or of one of its queues.
type Template struct {
	ID uuid.UUID `json:"id"`
	// QueueID is the queue it belongs to; nil: the whole tenant.
	QueueID *uuid.UUID `json:"queue_id"`
	Name    string     `json:"name"`
	// Keyword is the shortcut that expands to it; nil for none.
	Keyword     *string              `json:"keyword"`
	Bodies      TemplateBodies       `json:"bodies"`
	Attachments []TemplateAttachment `json:"attachments"`
	CreatedAt   time.Time            `json:"created_at"`
	UpdatedAt   time.Time            `json:"updated_at"`
}

// Body reports whether t has a body for channel.
func (t Template) Body(channel string) bool {
	switch channel {
	case events.ChannelChat:
		return t.Bodies.Chat != nil
	case events.ChannelSMS:
		return t.Bodies.SMS != nil
	case events.ChannelEmail:
		return t.Bodies.Email != nil
	}
	return false
}

// TemplateSpec is what defines a template, checked by the API.
type TemplateSpec struct {
	QueueID     *uuid.UUID
	Name        string
	Keyword     *string
	Bodies      TemplateBodies
	Attachments []TemplateAttachment
}

const templateColumns = `t.id, t.queue_id, t.name, t.keyword, t.bodies, t.attachments, t.created_at, t.updated_at`

func scanTemplate(row pgx.CollectableRow) (Template, error) {
	var (
		t             Template
		bodies, files []byte
	)
	if err := row.Scan(&t.ID, &t.QueueID, &t.Name, &t.Keyword, &bodies, &files, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return t, err
	}
	if err := json.Unmarshal(bodies, &t.Bodies); err != nil {
		return t, fmt.Errorf("decode the bodies of template %s: %w", t.ID, err)
	}
	var stored []storedAttachment
	if err := json.Unmarshal(files, &stored); err != nil {
		return t, fmt.Errorf("decode the attachments of template %s: %w", t.ID, err)
	}
	t.Attachments = make([]TemplateAttachment, len(stored))
	for i, a := range stored {
		t.Attachments[i] = TemplateAttachment(a)
	}
	return t, nil
}

func loadTemplates(ctx context.Context, db rowQuerier, sql string, args ...any) ([]Template, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanTemplate)
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	return out, nil
}

// ListTemplates returns a page of every template of tenant, oldest first.
func (s *Store) ListTemplates(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]Template, error) {
	args := []any{tenant, limit}
	where := ""
	if after != nil {
		where = ` AND (t.created_at, t.id) > ($3, $4)`
		args = append(args, after.At, after.ID)
	}
	return loadTemplates(ctx, s.pool, `SELECT `+templateColumns+` FROM inbox.templates t
		WHERE t.tenant_id = $1`+where+` ORDER BY t.created_at, t.id LIMIT $2`, args...)
}

// TemplateScope is the templates an agent may use: the tenant's, and
// those of Queues (every queue's when AllQueues); with Channel, only
// those with a body for it.
type TemplateScope struct {
	Tenant    uuid.UUID
	AllQueues bool
	Queues    []uuid.UUID
	Channel   string
}

// where is the scope as a condition on templates aliased t, its
// parameters numbered from n.
func (sc TemplateScope) where(n int) (string, []any) {
	cond := fmt.Sprintf(`t.tenant_id = $%d`, n)
	args := []any{sc.Tenant}
	n++
	if !sc.AllQueues {
		cond += fmt.Sprintf(` AND (t.queue_id IS NULL OR t.queue_id = ANY($%d::uuid[]))`, n)
		queues := sc.Queues
		if queues == nil {
			queues = []uuid.UUID{}
		}
		args = append(args, queues)
		n++
	}
	if sc.Channel != "" {
		cond += fmt.Sprintf(` AND t.bodies ? $%d`, n)
		args = append(args, sc.Channel)
	}
	return cond, args
}

// UsableTemplates returns a page of the templates of scope, oldest first.
func (s *Store) UsableTemplates(ctx context.Context, sc TemplateScope, after *Position, limit int) ([]Template, error) {
	cond, args := sc.where(1)
	n := len(args)
	if after != nil {
		cond += fmt.Sprintf(` AND (t.created_at, t.id) > ($%d, $%d)`, n+1, n+2)
		args = append(args, after.At, after.ID)
	}
	args = append(args, limit)
	return loadTemplates(ctx, s.pool, `SELECT `+templateColumns+` FROM inbox.templates t
		WHERE `+cond+fmt.Sprintf(` ORDER BY t.created_at, t.id LIMIT $%d`, len(args)), args...)
}

// Shortcuts returns the templates of scope whose keyword starts with
// prefix (lower case, as keywords are), the exact match first, then by
// keyword (a queue's before the tenant's of the same keyword); at most
// MaxShortcuts. One index range scan (templates_keyword_prefix): the
// keywords of the prefix are those from it up to it with its last byte
// raised by one.
func (s *Store) Shortcuts(ctx context.Context, sc TemplateScope, prefix string) ([]Template, error) {
	cond, args := sc.where(1)
	n := len(args)
	args = append(args, prefix, prefixEnd(prefix))
	return loadTemplates(ctx, s.pool, `SELECT `+templateColumns+` FROM inbox.templates t
		WHERE `+cond+fmt.Sprintf(` AND t.keyword IS NOT NULL AND t.keyword ~>=~ $%d AND t.keyword ~<~ $%d
		ORDER BY t.keyword = $%d DESC, t.keyword, t.queue_id IS NULL, t.id LIMIT %d`, n+1, n+2, n+1, MaxShortcuts), args...)
}

// prefixEnd is the least string above every string that starts with
// prefix, for keywords (ASCII below DEL): prefix with its last byte raised,
// or DEL for the empty prefix.
func prefixEnd(prefix string) string {
	if prefix == "" {
		return "\x7f"
	}
	b := []byte(prefix)
	b[len(b)-1]++
	return string(b)
}

// GetTemplate returns a template of tenant.
func (s *Store) GetTemplate(ctx context.Context, tenant, id uuid.UUID) (Template, error) {
	return oneTemplate(ctx, s.pool, tenant, id, false)
}

// TemplateIn is GetTemplate in tx.
func TemplateIn(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) (Template, error) {
	return oneTemplate(ctx, tx, tenant, id, false)
}

func oneTemplate(ctx context.Context, db rowQuerier, tenant, id uuid.UUID, lock bool) (Template, error) {
	sql := `SELECT ` + templateColumns + ` FROM inbox.templates t WHERE t.tenant_id = $1 AND t.id = $2`
	if lock {
		sql += ` FOR UPDATE`
	}
	ts, err := loadTemplates(ctx, db, sql, tenant, id)
	if err != nil {
		return Template{}, err
	}
	if len(ts) == 0 {
		return Template{}, ErrNotFound
	}
	return ts[0], nil
}

// LockTemplate returns a template of tenant, locked for update in tx.
func LockTemplate(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) (Template, error) {
	return oneTemplate(ctx, tx, tenant, id, true)
}

func templateAttachmentsJSON(in []TemplateAttachment) []byte {
	out := make([]storedAttachment, len(in))
	for i, a := range in {
		out[i] = storedAttachment(a)
	}
	return mustJSON(out)
}

// templateWriteError names the field a constraint refused.
func templateWriteError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "templates_keyword_scope" {
		return domain.Invalid("keyword", "another template of the same scope (the tenant, or this queue) has this keyword")
	}
	return fmt.Errorf("write template: %w", err)
}

// CreateTemplate stores a new template of tenant; its queue must be one of
// the tenant's.
func (s *Store) CreateTemplate(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec TemplateSpec, by string, now time.Time) (Template, error) {
	if spec.QueueID != nil {
		if err := QueueInTenant(ctx, tx, tenant, *spec.QueueID); err != nil {
			return Template{}, domain.Invalid("queue_id", "is not a queue of this tenant")
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Template{}, fmt.Errorf("template id: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO inbox.templates (id, tenant_id, queue_id, name, keyword, bodies, attachments, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`, id, tenant, spec.QueueID, spec.Name, spec.Keyword,
		mustJSON(spec.Bodies), templateAttachmentsJSON(spec.Attachments), by, now); err != nil {
		return Template{}, templateWriteError(err)
	}
	return oneTemplate(ctx, tx, tenant, id, false)
}

// UpdateTemplate replaces what defines template id of tenant.
func (s *Store) UpdateTemplate(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, spec TemplateSpec, now time.Time) (Template, error) {
	if spec.QueueID != nil {
		if err := QueueInTenant(ctx, tx, tenant, *spec.QueueID); err != nil {
			return Template{}, domain.Invalid("queue_id", "is not a queue of this tenant")
		}
	}
	tag, err := tx.Exec(ctx, `UPDATE inbox.templates SET queue_id = $3, name = $4, keyword = $5, bodies = $6, attachments = $7, updated_at = $8
		WHERE tenant_id = $1 AND id = $2`, tenant, id, spec.QueueID, spec.Name, spec.Keyword,
		mustJSON(spec.Bodies), templateAttachmentsJSON(spec.Attachments), now)
	if err != nil {
		return Template{}, templateWriteError(err)
	}
	if tag.RowsAffected() == 0 {
		return Template{}, ErrNotFound
	}
	return oneTemplate(ctx, tx, tenant, id, false)
}

// DeleteTemplate deletes a template of tenant. Its files stay in the blob
// store: replies that sent them name the same keys.
func (s *Store) DeleteTemplate(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID) error {
	tag, err := tx.Exec(ctx, `DELETE FROM inbox.templates WHERE tenant_id = $1 AND id = $2`, tenant, id)
	if err != nil {
		return fmt.Errorf("delete template: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// conversationRef is the short reference of a conversation: the first 8
// characters of its id, upper case.
func conversationRef(id uuid.UUID) string { return strings.ToUpper(id.String()[:8]) }

// ReplyVariables is the package's ReplyVariables outside a transaction.
func (s *Store) ReplyVariables(ctx context.Context, c *Conversation, userID string) (map[string]string, error) {
	return ReplyVariables(ctx, s.pool, c, userID)
}

// ReplyVariables returns the values of the variables of reply templates on
// c, replied by the user userID ("" for an API token, which has no name):
// the names of the customer, the agent, the queue and the tenant, the
// conversation's reference and the contact's custom fields. A variable
// without a value is absent. One query.
func ReplyVariables(ctx context.Context, db rowReader, c *Conversation, userID string) (map[string]string, error) {
	var (
		tenantName       string
		queueName, agent *string
		fields           []byte
	)
	err := db.QueryRow(ctx, `SELECT t.name, q.name, u.name, k.custom_fields
		FROM inbox.tenants t
		LEFT JOIN inbox.queues q ON q.id = $2 AND q.tenant_id = t.id
		LEFT JOIN inbox.users u ON u.id::text = $3 AND u.tenant_id = t.id
		LEFT JOIN inbox.contacts k ON k.id = $4 AND k.tenant_id = t.id
		WHERE t.id = $1`, c.Tenant, c.QueueID, userID, c.ContactID).Scan(&tenantName, &queueName, &agent, &fields)
	if err != nil {
		return nil, fmt.Errorf("read the variables of a reply: %w", err)
	}
	v := map[string]string{
		domain.VarCustomerName:    c.ContactName,
		domain.VarConversationRef: conversationRef(c.ID),
		domain.VarTenantName:      tenantName,
	}
	if queueName != nil {
		v[domain.VarQueueName] = *queueName
	}
	if agent != nil {
		v[domain.VarAgentName] = *agent
	}
	if len(fields) > 0 {
		var custom map[string]string
		if err := json.Unmarshal(fields, &custom); err != nil {
			return nil, fmt.Errorf("decode the custom fields of contact %s: %w", c.ContactID, err)
		}
		for k, val := range custom {
			v[domain.ContactFieldPrefix+k] = val
		}
	}
	return v, nil
}
