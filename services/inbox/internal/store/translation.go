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
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/pkg/seal"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Translation states.
const (
	TranslationPending = "pending"
	TranslationDone    = "done"
	TranslationFailed  = "failed"
)

// TranslationSettings are a tenant's translator (ADR 20). The API key is
// never shown: APIKeySet says whether there is one.
type TranslationSettings struct {
	Enabled   bool   `json:"enabled"`
	Provider  string `json:"provider"`
	URL       string `json:"url"`
	APIKey    string `json:"-"`
	APIKeySet bool   `json:"api_key_set"`
}

// DefaultTranslationProvider is the provider of a tenant that never chose.
const DefaultTranslationProvider = "libretranslate"

// GetTranslationSettings returns tenant's translator, its API key opened
// (it is stored sealed); a tenant that never set one has translation off.
func (s *Store) GetTranslationSettings(ctx context.Context, tenant uuid.UUID) (TranslationSettings, error) {
	out := TranslationSettings{Provider: DefaultTranslationProvider}
	err := s.pool.QueryRow(ctx, `SELECT enabled, provider, url, api_key FROM inbox.translation_settings WHERE tenant_id = $1`, tenant).
		Scan(&out.Enabled, &out.Provider, &out.URL, &out.APIKey)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return TranslationSettings{}, fmt.Errorf("read translation settings: %w", err)
	}
	out.APIKeySet = out.APIKey != ""
	if out.APIKey, err = s.openTranslationKey(tenant, out.APIKey); err != nil {
		return TranslationSettings{}, err
	}
	return out, nil
}

// PutTranslationSettings replaces tenant's translator; apiKey nil keeps
// the key stored, "" removes it, and another is stored sealed. The caller
// checked the URL and provider.
func (s *Store) PutTranslationSettings(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, set TranslationSettings, apiKey *string, now time.Time) (TranslationSettings, error) {
	if set.Enabled && set.URL == "" {
		return TranslationSettings{}, domain.Invalid("url", "is required to enable translation: the translator's https URL")
	}
	if apiKey != nil && *apiKey != "" {
		if seal.IsSealed(*apiKey) {
			return TranslationSettings{}, domain.Invalid("api_key", "must be the key itself, not a sealed value")
		}
		sealed, err := s.sealTranslationKey(tenant, *apiKey)
		if err != nil {
			return TranslationSettings{}, err
		}
		apiKey = &sealed
	}
	err := tx.QueryRow(ctx, `INSERT INTO inbox.translation_settings (tenant_id, enabled, provider, url, api_key, updated_at)
			VALUES ($1, $2, $3, $4, coalesce($5::text, ''), $6)
		ON CONFLICT (tenant_id) DO UPDATE SET enabled = excluded.enabled, provider = excluded.provider, url = excluded.url,
			api_key = coalesce($5::text, translation_settings.api_key), updated_at = excluded.updated_at
		RETURNING api_key <> ''`, tenant, set.Enabled, set.Provider, set.URL, apiKey, now).Scan(&set.APIKeySet)
	if err != nil {
		return TranslationSettings{}, fmt.Errorf("write translation settings: %w", err)
	}
	set.APIKey = ""
	return set, nil
}

// Translation is a message's translation as the API shows it. For a
// customer's message the body is the original and Text its translation;
// for a reply sent translated, Original is what the agent wrote and Text
// (the body) what the customer got. A reply whose translation failed and
// that was sent as written (fallback) has state failed and no Text.
type Translation struct {
	// State is pending ("translation in progress"), done or failed.
	State          string `json:"state"`
	SourceLanguage string `json:"source_language,omitempty"`
	TargetLanguage string `json:"target_language"`
	Text           string `json:"text,omitempty"`
	Original       string `json:"original,omitempty"`
	// Error says why the translation failed, or why the last attempt of
	// a pending one did.
	Error       string    `json:"error,omitempty"`
	RequestedBy string    `json:"requested_by"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// attachTranslations sets the translation of each of msgs that has one.
func attachTranslations(ctx context.Context, db rowQuerier, msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(msgs))
	at := make(map[uuid.UUID]int, len(msgs))
	for i, m := range msgs {
		ids[i], at[m.ID] = m.ID, i
	}
	rows, err := db.Query(ctx, `SELECT message_id, `+translationColumns+` FROM inbox.message_translations t
		WHERE t.message_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return fmt.Errorf("read translations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var tr Translation
		if err := rows.Scan(append([]any{&id}, tr.fields()...)...); err != nil {
			return fmt.Errorf("read translations: %w", err)
		}
		msgs[at[id]].Translation = &tr
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read translations: %w", err)
	}
	return nil
}

const translationColumns = `t.state, t.source_language, t.target_language, coalesce(t.text, ''), coalesce(t.original, ''),
	coalesce(t.error, ''), t.requested_by, t.updated_at`

func (t *Translation) fields() []any {
	return []any{&t.State, &t.SourceLanguage, &t.TargetLanguage, &t.Text, &t.Original, &t.Error, &t.RequestedBy, &t.UpdatedAt}
}

// insertReplyTranslation stores the translation of a reply m, sent in
// tx, and sets it on m.
func insertReplyTranslation(ctx context.Context, tx pgx.Tx, c *Conversation, m *Message, tr Translation, now time.Time) error {
	tr.UpdatedAt = now
	var text, errText *string
	if tr.Text != "" {
		text = &tr.Text
	}
	if tr.Error != "" {
		errText = &tr.Error
	}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.message_translations (message_id, tenant_id, conversation_id, state, source_language,
			target_language, text, original, error, requested_by, attempts, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11)`,
		m.ID, c.Tenant, c.ID, tr.State, tr.SourceLanguage, tr.TargetLanguage, text, tr.Original, errText, tr.RequestedBy, now)
	if err != nil {
		return fmt.Errorf("store the reply's translation: %w", err)
	}
	m.Translation = &tr
	return nil
}

// TranslationRequest asks for a message to be translated by the worker.
type TranslationRequest struct {
	MessageID      uuid.UUID
	Tenant         uuid.UUID
	ConversationID uuid.UUID
	Source         string
	Target         string
	// RequestedBy is "system" or the principal's actor id.
	RequestedBy string
}

// EnqueueTranslations queues translations of inbound messages that have
// none yet, and announces each queued one (state pending). It returns how
// many were queued.
func (s *Store) EnqueueTranslations(ctx context.Context, reqs []TranslationRequest, now time.Time) (int, error) {
	if len(reqs) == 0 {
		return 0, nil
	}
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var queued []uuid.UUID
		for _, r := range reqs {
			tag, err := tx.Exec(ctx, `INSERT INTO inbox.message_translations (message_id, tenant_id, conversation_id, state,
					source_language, target_language, requested_by, next_attempt_at, created_at, updated_at)
				SELECT m.id, m.tenant_id, m.conversation_id, 'pending', $3, $4, $5, $6, $6, $6 FROM inbox.messages m
				WHERE m.id = $1 AND m.tenant_id = $2 AND m.anonymised_at IS NULL
				ON CONFLICT (message_id) DO NOTHING`, r.MessageID, r.Tenant, r.Source, r.Target, r.RequestedBy, now)
			if err != nil {
				return fmt.Errorf("queue translation: %w", err)
			}
			if tag.RowsAffected() == 1 {
				queued = append(queued, r.MessageID)
			}
		}
		n = len(queued)
		return s.announceTranslations(ctx, tx, queued, now)
	})
	return n, err
}

// RequestTranslation queues, on demand, the translation of a message of
// tenant into target, replacing the one it had. A reply sent translated
// keeps its translation: its original is what the agent wrote (a
// ConflictError). It returns the message as it is then.
func (s *Store) RequestTranslation(ctx context.Context, tenant, message uuid.UUID, source, target, by string, now time.Time) (Message, error) {
	var out Message
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var sentTranslated bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM inbox.message_translations WHERE message_id = $1 AND original IS NOT NULL)
			FROM inbox.messages m WHERE m.id = $1 AND m.tenant_id = $2 FOR UPDATE OF m`, message, tenant).Scan(&sentTranslated)
		if errors.Is(err, pgx.ErrNoRows) {
			return domain.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("find the message to translate: %w", err)
		}
		if sentTranslated {
			return fmt.Errorf("%w: this reply was sent translated: its original and its translation are kept as they were sent", domain.ErrConflict)
		}
		_, err = tx.Exec(ctx, `INSERT INTO inbox.message_translations AS t (message_id, tenant_id, conversation_id, state,
				source_language, target_language, requested_by, next_attempt_at, created_at, updated_at)
			SELECT m.id, m.tenant_id, m.conversation_id, 'pending', $3, $4, $5, $6, $6, $6 FROM inbox.messages m WHERE m.id = $1 AND m.tenant_id = $2
			ON CONFLICT (message_id) DO UPDATE SET state = 'pending', source_language = excluded.source_language,
				target_language = excluded.target_language, requested_by = excluded.requested_by, text = NULL, error = NULL,
				generation = t.generation + 1, attempts = 0, next_attempt_at = excluded.next_attempt_at, claimed_until = NULL,
				updated_at = excluded.updated_at`, message, tenant, source, target, by, now)
		if err != nil {
			return fmt.Errorf("request translation: %w", err)
		}
		if err := s.announceTranslations(ctx, tx, []uuid.UUID{message}, now); err != nil {
			return err
		}
		out, err = messageIn(ctx, tx, tenant, message)
		return err
	})
	return out, err
}

// messageIn reads a message of tenant with its translation, in tx.
func messageIn(ctx context.Context, db rowQuerier, tenant, id uuid.UUID) (Message, error) {
	rows, err := db.Query(ctx, `SELECT `+messageColumns+` FROM inbox.messages m WHERE m.tenant_id = $1 AND m.id = $2`, tenant, id)
	if err != nil {
		return Message{}, fmt.Errorf("get message: %w", err)
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanMessage)
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("get message: %w", err)
	}
	msgs := []Message{m}
	if err := attachTranslations(ctx, db, msgs); err != nil {
		return Message{}, err
	}
	return msgs[0], nil
}

// announceTranslations puts in the outbox, in tx, a TypeMessageTranslated
// event for each of ids: the message with its translation, and its
// conversation as the stream needs it.
func (s *Store) announceTranslations(ctx context.Context, tx pgx.Tx, ids []uuid.UUID, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM inbox.messages m WHERE m.id = ANY($1::uuid[]) ORDER BY m.received_at, m.id`, ids)
	if err != nil {
		return fmt.Errorf("read translated messages: %w", err)
	}
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return fmt.Errorf("read translated messages: %w", err)
	}
	if err := attachTranslations(ctx, tx, msgs); err != nil {
		return err
	}
	var recs []outbox.Record
	for _, m := range msgs {
		rows, err := tx.Query(ctx, `SELECT `+conversationColumns+` FROM inbox.conversations c WHERE c.id = $1`, m.ConversationID)
		if err != nil {
			return fmt.Errorf("read the conversation of a translated message: %w", err)
		}
		c, err := pgx.CollectExactlyOneRow(rows, scanConversation)
		if err != nil {
			return fmt.Errorf("read the conversation of a translated message: %w", err)
		}
		rec, err := translatedEvent(m, c, now)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	return s.outbox.Add(ctx, tx, recs...)
}

// translatedEvent announces a message's translation, as messageEvent
// announces the message.
func translatedEvent(m Message, c Conversation, now time.Time) (outbox.Record, error) {
	rec, err := messageEvent(m, c, now)
	if err != nil {
		return outbox.Record{}, err
	}
	var data events.ConversationMessage
	if err := rec.Event.Decode(&data); err != nil {
		return outbox.Record{}, fmt.Errorf("re-read message event: %w", err)
	}
	ev, err := events.New(events.TypeMessageTranslated, EventSource, c.Tenant.String(), now, data)
	if err != nil {
		return outbox.Record{}, err
	}
	ev.Subject = c.ID.String()
	rec.Event = ev
	return rec, nil
}

// TranslationJob is a pending translation a worker claimed.
type TranslationJob struct {
	MessageID      uuid.UUID
	Tenant         uuid.UUID
	ConversationID uuid.UUID
	Generation     int64
	Attempts       int
	Text           string
	Source, Target string
	// Settings are the tenant's translator, its API key opened.
	Settings TranslationSettings
	// KeyErr says why the API key could not be opened (a key missing
	// from the keyring); the job is tried again later.
	KeyErr error
}

// ClaimTranslations takes up to limit pending translations due at now,
// holding each until now+lease, and returns them with the message's text
// and the tenant's translator.
func (s *Store) ClaimTranslations(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]TranslationJob, error) {
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT message_id FROM inbox.message_translations
			WHERE state = 'pending' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
			ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
		UPDATE inbox.message_translations t SET claimed_until = $2, attempts = t.attempts + 1
		FROM due, inbox.messages m LEFT JOIN inbox.translation_settings s ON s.tenant_id = m.tenant_id
		WHERE t.message_id = due.message_id AND m.id = t.message_id
		RETURNING t.message_id, t.tenant_id, t.conversation_id, t.generation, t.attempts, m.body, t.source_language, t.target_language,
			coalesce(s.enabled, false), coalesce(s.provider, ''), coalesce(s.url, ''), coalesce(s.api_key, '')`,
		now, now.Add(lease), limit)
	if err != nil {
		return nil, fmt.Errorf("claim translations: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TranslationJob, error) {
		var j TranslationJob
		err := r.Scan(&j.MessageID, &j.Tenant, &j.ConversationID, &j.Generation, &j.Attempts, &j.Text, &j.Source, &j.Target,
			&j.Settings.Enabled, &j.Settings.Provider, &j.Settings.URL, &j.Settings.APIKey)
		if err != nil {
			return j, err
		}
		j.Settings.APIKeySet = j.Settings.APIKey != ""
		j.Settings.APIKey, j.KeyErr = s.openTranslationKey(j.Tenant, j.Settings.APIKey)
		return j, nil
	})
}

// TranslationOutcome is what became of a claimed translation: Done with
// Text, Failed with Reason, or neither: tried again at RetryAt, Reason
// saying why the attempt failed.
type TranslationOutcome struct {
	Done    bool
	Text    string
	Source  string
	Failed  bool
	Reason  string
	RetryAt time.Time
}

// FinishTranslation records the outcome of job, unless the translation was
// asked again meanwhile (a newer generation) or erased; a done or failed
// one is announced.
func (s *Store) FinishTranslation(ctx context.Context, job TranslationJob, out TranslationOutcome, now time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		state := TranslationPending
		switch {
		case out.Done:
			state = TranslationDone
		case out.Failed:
			state = TranslationFailed
		}
		var text, reason *string
		if out.Done {
			text = &out.Text
		}
		if out.Reason != "" {
			reason = &out.Reason
		}
		next := out.RetryAt
		if next.IsZero() {
			next = now
		}
		tag, err := tx.Exec(ctx, `UPDATE inbox.message_translations SET state = $3, text = $4, error = $5,
				source_language = CASE WHEN $6 <> '' THEN $6 ELSE source_language END,
				next_attempt_at = $7, claimed_until = NULL, updated_at = $8
			WHERE message_id = $1 AND generation = $2 AND state = 'pending'`,
			job.MessageID, job.Generation, state, text, reason, out.Source, next, now)
		if err != nil {
			return fmt.Errorf("record translation: %w", err)
		}
		if tag.RowsAffected() == 0 || state == TranslationPending {
			return nil
		}
		return s.announceTranslations(ctx, tx, []uuid.UUID{job.MessageID}, now)
	})
}

// TranslationTarget is what the translation of an inbound message
// depends on: its tenant's translator, its language and the languages of
// the agents who will read it.
type TranslationTarget struct {
	MessageID      uuid.UUID
	Tenant         uuid.UUID
	ConversationID uuid.UUID
	Language       string
	Body           string
	Enabled        bool
	// Translated: the message has a translation already.
	Translated bool
	// Audience are the languages each reader declares: the assignees of
	// the conversation; without any, the agents of its queue; without a
	// queue, the tenant's agents.
	Audience [][]string
}

// TranslationTargets reads, for each of the inbound messages ids of
// tenants whose translation is on, what its translation depends on.
// Messages of tenants with translation off are left out.
func (s *Store) TranslationTargets(ctx context.Context, ids []uuid.UUID) ([]TranslationTarget, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT m.id, m.tenant_id, m.conversation_id, m.language, m.body,
			EXISTS (SELECT 1 FROM inbox.message_translations t WHERE t.message_id = m.id),
			coalesce((SELECT json_agg(u.languages) FROM inbox.users u WHERE u.tenant_id = m.tenant_id AND u.disabled_at IS NULL AND (
				CASE WHEN cardinality(c.assignee_ids) > 0 THEN u.id = ANY(c.assignee_ids)
				     WHEN c.queue_id IS NOT NULL THEN EXISTS (SELECT 1 FROM inbox.user_queues uq WHERE uq.user_id = u.id AND uq.queue_id = c.queue_id)
				     ELSE true END)), '[]')
		FROM inbox.messages m
		JOIN inbox.translation_settings s ON s.tenant_id = m.tenant_id AND s.enabled
		JOIN inbox.conversations c ON c.id = m.conversation_id
		WHERE m.id = ANY($1::uuid[]) AND m.direction = 'inbound' AND NOT m.automatic AND m.anonymised_at IS NULL`, ids)
	if err != nil {
		return nil, fmt.Errorf("read what translations depend on: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TranslationTarget, error) {
		t := TranslationTarget{Enabled: true}
		var audience []byte
		if err := r.Scan(&t.MessageID, &t.Tenant, &t.ConversationID, &t.Language, &t.Body, &t.Translated, &audience); err != nil {
			return t, err
		}
		if err := json.Unmarshal(audience, &t.Audience); err != nil {
			return t, fmt.Errorf("decode the agents' languages: %w", err)
		}
		return t, nil
	})
}
