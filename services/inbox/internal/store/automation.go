package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// This file holds the automation settings: waiting messages ([003]), the
// tenant's and each queue's acknowledgement and waiting message, smart
// close ([004]) and inactivity limits. They are announced on
// sb.config.v1 for the scheduler, which decides when; the texts stay here
// and are rendered when a message goes out.

// Limits of automatic texts and their delays.
const (
	MaxAutomaticBodyBytes    = 10000
	MaxAutomaticSubjectBytes = 998
	// MaxWaitingHours is a year: a longer wait is a mistake.
	MaxWaitingHours = 8760
	// MaxAutomationMinutes is a year too.
	MaxAutomationMinutes = 525600
	// DefaultSmartCloseTimeoutMinutes is how long smart close waits for an
	// answer unless the tenant says otherwise.
	DefaultSmartCloseTimeoutMinutes = 60
	// DefaultSmartCloseFirstWaitMinutes is how long smart close waits
	// before asking, when the agent asked it to wait first.
	DefaultSmartCloseFirstWaitMinutes = 15
)

// AutomaticText is the text of an automatic message, with variables (see
// domain.Variables). Subject applies to email; without one, email uses
// the reply subject of the customer's last mail.
type AutomaticText struct {
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body"`
}

// Validate checks the text; field names it in errors.
func (t AutomaticText) Validate(field string) error {
	if len(t.Subject) > MaxAutomaticSubjectBytes || strings.ContainsAny(t.Subject, "\r\n\x00") || !utf8.ValidString(t.Subject) {
		return domain.Invalid(field+".subject", fmt.Sprintf("must be one line of at most %d bytes", MaxAutomaticSubjectBytes))
	}
	if err := checkBody(field+".body", t.Body, true); err != nil {
		return err
	}
	return domain.CheckTemplate(field+".subject", t.Subject)
}

// checkBody checks an automatic text's body and its variables.
func checkBody(field, body string, required bool) error {
	if (required && strings.TrimSpace(body) == "") || len(body) > MaxAutomaticBodyBytes || !utf8.ValidString(body) || strings.ContainsRune(body, 0) {
		what := "must be"
		if required {
			what = "is required,"
		}
		return domain.Invalid(field, fmt.Sprintf("%s at most %d bytes of text without NUL", what, MaxAutomaticBodyBytes))
	}
	return domain.CheckTemplate(field, body)
}

// checkDelay checks a positive number of hours or minutes, at most most.
func checkDelay(field string, v *float64, most float64) error {
	if v == nil {
		return nil
	}
	if math.IsNaN(*v) || *v <= 0 || *v > most {
		return domain.Invalid(field, fmt.Sprintf("must be more than 0 and at most %g; leave it out for none", most))
	}
	return nil
}

// SmartCloseText is what smart close says on one channel.
type SmartCloseText struct {
	// Question asks the customer whether they need anything else.
	Question string `json:"question"`
	// FollowUp, when set, goes out after a "yes" to ask for details.
	FollowUp string `json:"follow_up,omitempty"`
	// YesLabel and NoLabel are the buttons where the channel has them
	// (chat); Yes and No by default.
	YesLabel string `json:"yes_label,omitempty"`
	NoLabel  string `json:"no_label,omitempty"`
}

// SmartClose is the tenant's smart close ([004]).
type SmartClose struct {
	// FirstWaitMinutes is how long smart close waits for the customer to
	// write before it asks, when the agent chose to wait first.
	FirstWaitMinutes float64 `json:"first_wait_minutes"`
	// TimeoutMinutes is how long it waits for an answer before the
	// conversation is done.
	TimeoutMinutes float64 `json:"timeout_minutes"`
	// Texts are per channel (email, sms, chat); smart close is available
	// on the channels that have one.
	Texts map[string]SmartCloseText `json:"texts"`
}

// Channels says on which channels besides email automatic messages go out.
type Channels struct {
	SMS  bool `json:"sms"`
	Chat bool `json:"chat"`
}

// TenantAutomation is a tenant's automation settings.
type TenantAutomation struct {
	// Channels enables automatic messages on SMS and chat; email always
	// has them.
	Channels Channels `json:"channels"`
	// AnnouncedDelayHours is the delay automatic texts announce
	// ({{announced_delay_hours}}).
	AnnouncedDelayHours *float64 `json:"announced_delay_hours"`
	// WaitingMessageID is the waiting message of every queue of the
	// tenant that has none of its own.
	WaitingMessageID *uuid.UUID `json:"waiting_message_id"`
	// Acknowledgement, when set, answers every new conversation at once,
	// unless its queue has its own.
	Acknowledgement *AutomaticText `json:"acknowledgement"`
	SmartClose      SmartClose     `json:"smart_close"`
}

// QueueAutomation is a queue's own automation; what it leaves empty comes
// from the tenant.
type QueueAutomation struct {
	WaitingMessageID *uuid.UUID     `json:"waiting_message_id"`
	Acknowledgement  *AutomaticText `json:"acknowledgement"`
	// InactivityMinutes, when set, alerts the agent of an assigned
	// conversation of the queue that saw no activity for that long.
	InactivityMinutes *float64 `json:"inactivity_minutes"`
}

// Validate checks the tenant settings, but not that the waiting message
// exists (PutTenantAutomation does).
func (a *TenantAutomation) Validate() error {
	if err := checkDelay("announced_delay_hours", a.AnnouncedDelayHours, MaxWaitingHours); err != nil {
		return err
	}
	if a.Acknowledgement != nil {
		if err := a.Acknowledgement.Validate("acknowledgement"); err != nil {
			return err
		}
	}
	sc := &a.SmartClose
	if sc.FirstWaitMinutes == 0 {
		sc.FirstWaitMinutes = DefaultSmartCloseFirstWaitMinutes
	}
	if sc.TimeoutMinutes == 0 {
		sc.TimeoutMinutes = DefaultSmartCloseTimeoutMinutes
	}
	if err := checkDelay("smart_close.first_wait_minutes", &sc.FirstWaitMinutes, MaxAutomationMinutes); err != nil {
		return err
	}
	if err := checkDelay("smart_close.timeout_minutes", &sc.TimeoutMinutes, MaxAutomationMinutes); err != nil {
		return err
	}
	for channel, t := range sc.Texts {
		field := "smart_close.texts." + channel
		if channel != events.ChannelEmail && channel != events.ChannelSMS && channel != events.ChannelChat {
			return domain.Invalid(field, "must be email, sms or chat")
		}
		if err := checkBody(field+".question", t.Question, true); err != nil {
			return err
		}
		if err := checkBody(field+".follow_up", t.FollowUp, false); err != nil {
			return err
		}
		for _, l := range []struct{ name, v string }{{"yes_label", t.YesLabel}, {"no_label", t.NoLabel}} {
			if len(l.v) > 40 || strings.ContainsAny(l.v, "\r\n\x00") || !utf8.ValidString(l.v) {
				return domain.Invalid(field+"."+l.name, "must be one line of at most 40 bytes")
			}
		}
	}
	if sc.Texts == nil {
		sc.Texts = map[string]SmartCloseText{}
	}
	return nil
}

// Validate checks the queue settings, but not that the waiting message
// exists (PutQueueAutomation does).
func (a *QueueAutomation) Validate() error {
	if a.Acknowledgement != nil {
		if err := a.Acknowledgement.Validate("acknowledgement"); err != nil {
			return err
		}
	}
	return checkDelay("inactivity_minutes", a.InactivityMinutes, MaxAutomationMinutes)
}

// defaults fills what settings stored before a field existed lack.
func (a *TenantAutomation) defaults() {
	if a.SmartClose.FirstWaitMinutes <= 0 {
		a.SmartClose.FirstWaitMinutes = DefaultSmartCloseFirstWaitMinutes
	}
	if a.SmartClose.TimeoutMinutes <= 0 {
		a.SmartClose.TimeoutMinutes = DefaultSmartCloseTimeoutMinutes
	}
	if a.SmartClose.Texts == nil {
		a.SmartClose.Texts = map[string]SmartCloseText{}
	}
}

// event is what the scheduler needs of the tenant's settings.
func (a TenantAutomation) event(tenant uuid.UUID) events.Automation {
	ev := events.Automation{TenantID: tenant.String(), SMS: a.Channels.SMS, Chat: a.Channels.Chat,
		Acknowledgement: a.Acknowledgement != nil, SmartCloseFirstWaitMinutes: a.SmartClose.FirstWaitMinutes,
		SmartCloseTimeoutMinutes: a.SmartClose.TimeoutMinutes}
	if a.WaitingMessageID != nil {
		ev.WaitingMessageID = a.WaitingMessageID.String()
	}
	return ev
}

// event is what the scheduler needs of the queue's settings.
func (a QueueAutomation) event() *events.QueueAutomation {
	ev := &events.QueueAutomation{Acknowledgement: a.Acknowledgement != nil}
	if a.WaitingMessageID != nil {
		ev.WaitingMessageID = a.WaitingMessageID.String()
	}
	if a.InactivityMinutes != nil {
		ev.InactivityMinutes = *a.InactivityMinutes
	}
	return ev
}

// decodeSettings reads settings stored as JSON, plus the waiting message
// column.
func decodeSettings(raw []byte, wm *uuid.UUID, into any) error {
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("decode automation settings: %w", err)
	}
	switch a := into.(type) {
	case *TenantAutomation:
		a.WaitingMessageID = wm
		a.defaults()
	case *QueueAutomation:
		a.WaitingMessageID = wm
	}
	return nil
}

// encodeSettings is the JSON stored; the waiting message has its column.
func encodeSettings(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode automation settings: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("encode automation settings: %w", err)
	}
	delete(m, "waiting_message_id")
	return json.Marshal(m)
}

// GetTenantAutomation returns a tenant's automation settings.
func (s *Store) GetTenantAutomation(ctx context.Context, tenant uuid.UUID) (TenantAutomation, error) {
	return tenantAutomation(ctx, s.pool, tenant, false)
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func tenantAutomation(ctx context.Context, db queryRower, tenant uuid.UUID, lock bool) (TenantAutomation, error) {
	sql := `SELECT automation, waiting_message_id FROM inbox.tenants WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	var a TenantAutomation
	return a, readSettings(ctx, db, &a, sql, tenant)
}

// queueAutomation returns a queue's own automation settings.
func queueAutomation(ctx context.Context, db queryRower, tenant, queue uuid.UUID) (QueueAutomation, error) {
	var a QueueAutomation
	return a, readSettings(ctx, db, &a, `SELECT automation, waiting_message_id FROM inbox.queues WHERE tenant_id = $1 AND id = $2`, tenant, queue)
}

// readSettings reads the automation and waiting_message_id columns that
// sql selects into into (a *TenantAutomation or *QueueAutomation).
func readSettings(ctx context.Context, db queryRower, into any, sql string, args ...any) error {
	var (
		raw []byte
		wm  *uuid.UUID
	)
	err := db.QueryRow(ctx, sql, args...).Scan(&raw, &wm)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("read automation settings: %w", err)
	}
	return decodeSettings(raw, wm, into)
}

// waitingMessageOf checks that wm, when set, is a waiting message of
// tenant; field names it in the error.
func waitingMessageOf(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, wm *uuid.UUID, field string) error {
	if wm == nil {
		return nil
	}
	if err := exists(ctx, tx, `SELECT EXISTS (SELECT 1 FROM inbox.waiting_messages WHERE tenant_id = $1 AND id = $2)`, tenant, *wm); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return domain.Invalid(field, "is not a waiting message of this tenant")
		}
		return err
	}
	return nil
}

// PutTenantAutomation replaces a tenant's automation settings and
// announces them.
func (s *Store) PutTenantAutomation(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, a TenantAutomation, now time.Time) (TenantAutomation, error) {
	if err := a.Validate(); err != nil {
		return a, err
	}
	if err := waitingMessageOf(ctx, tx, tenant, a.WaitingMessageID, "waiting_message_id"); err != nil {
		return a, err
	}
	raw, err := encodeSettings(a)
	if err != nil {
		return a, err
	}
	tag, err := tx.Exec(ctx, `UPDATE inbox.tenants SET automation = $2, waiting_message_id = $3 WHERE id = $1`, tenant, raw, a.WaitingMessageID)
	if err != nil {
		return a, fmt.Errorf("write tenant automation: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return a, ErrNotFound
	}
	rec, err := automationRecord(tenant, a, now)
	if err != nil {
		return a, err
	}
	return a, s.outbox.Add(ctx, tx, rec)
}

func automationRecord(tenant uuid.UUID, a TenantAutomation, now time.Time) (outbox.Record, error) {
	ev, err := events.New(events.TypeAutomation, EventSource, tenant.String(), now, a.event(tenant))
	if err != nil {
		return outbox.Record{}, err
	}
	return outbox.Record{Topic: events.TopicConfig, Key: events.ConfigKey("automation", tenant.String()), Event: ev}, nil
}

// GetQueueAutomation returns a queue's own automation settings.
func (s *Store) GetQueueAutomation(ctx context.Context, tenant, queue uuid.UUID) (QueueAutomation, error) {
	return queueAutomation(ctx, s.pool, tenant, queue)
}

// PutQueueAutomation replaces a queue's own automation settings and
// announces the queue.
func (s *Store) PutQueueAutomation(ctx context.Context, tx pgx.Tx, tenant, queue uuid.UUID, a QueueAutomation, now time.Time) (QueueAutomation, error) {
	if err := a.Validate(); err != nil {
		return a, err
	}
	q, err := queueKind.get(ctx, tx, tenant, queue)
	if err != nil {
		return a, err
	}
	if err := waitingMessageOf(ctx, tx, tenant, a.WaitingMessageID, "waiting_message_id"); err != nil {
		return a, err
	}
	raw, err := encodeSettings(a)
	if err != nil {
		return a, err
	}
	if _, err := tx.Exec(ctx, `UPDATE inbox.queues SET automation = $3, waiting_message_id = $4 WHERE tenant_id = $1 AND id = $2`,
		tenant, queue, raw, a.WaitingMessageID); err != nil {
		return a, fmt.Errorf("write queue automation: %w", err)
	}
	rec, err := queueRecord(ctx, tx, tenant, q, now)
	if err != nil {
		return a, err
	}
	return a, s.outbox.Add(ctx, tx, rec)
}

// WaitingHours are the hours after which a waiting message goes out, per
// state; nil: not sent in that state.
type WaitingHours struct {
	New           *float64 `json:"new"`
	HelpRequested *float64 `json:"help_requested"`
	External      *float64 `json:"external"`
}

// WaitingMessage is a waiting message ([003]).
type WaitingMessage struct {
	ID        uuid.UUID    `json:"id"`
	Name      string       `json:"name"`
	Subject   string       `json:"subject"`
	Body      string       `json:"body"`
	Hours     WaitingHours `json:"hours"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// WaitingMessageSpec is what defines a waiting message.
type WaitingMessageSpec struct {
	Name    string
	Subject string
	Body    string
	Hours   WaitingHours
}

// Validate checks a waiting message ([003]): a name, a subject, a body
// whose variables are known, and hours for at least one state, each more
// than 0 (0 is refused; none means not sent in that state).
func (w WaitingMessageSpec) Validate() error {
	if err := CheckName("name", w.Name); err != nil {
		return err
	}
	if strings.TrimSpace(w.Subject) == "" {
		return domain.Invalid("subject", "is required")
	}
	text := AutomaticText{Subject: w.Subject, Body: w.Body}
	if err := text.Validate(""); err != nil {
		var fe *domain.FieldError
		if errors.As(err, &fe) {
			return domain.Invalid(strings.TrimPrefix(fe.Field, "."), fe.Reason)
		}
		return err
	}
	hours := []struct {
		field string
		v     *float64
	}{{"hours.new", w.Hours.New}, {"hours.help_requested", w.Hours.HelpRequested}, {"hours.external", w.Hours.External}}
	set := 0
	for _, h := range hours {
		if h.v == nil {
			continue
		}
		set++
		if err := checkDelay(h.field, h.v, MaxWaitingHours); err != nil {
			return err
		}
	}
	if set == 0 {
		return &NoHoursError{}
	}
	return nil
}

// NoHoursError refuses a waiting message without hours for any state: it
// would never be sent. It names the three fields.
type NoHoursError struct{}

func (e *NoHoursError) Error() string {
	return "a waiting message needs hours for at least one of the states new, help_requested, external"
}
func (e *NoHoursError) Unwrap() error { return domain.ErrInvalid }

// Fields are the fields of which one is required.
func (e *NoHoursError) Fields() []string {
	return []string{"hours.new", "hours.help_requested", "hours.external"}
}

const waitingMessageColumns = `id, name, subject, body, hours_new, hours_help_requested, hours_external, created_at, updated_at`

func scanWaitingMessage(row pgx.CollectableRow) (WaitingMessage, error) {
	var w WaitingMessage
	err := row.Scan(&w.ID, &w.Name, &w.Subject, &w.Body, &w.Hours.New, &w.Hours.HelpRequested, &w.Hours.External, &w.CreatedAt, &w.UpdatedAt)
	return w, err
}

var waitingMessages = tenantRows[WaitingMessage]{table: "inbox.waiting_messages", columns: waitingMessageColumns, what: "waiting messages",
	scan: scanWaitingMessage}

// ListWaitingMessages returns up to limit waiting messages of tenant after
// the position, oldest first.
func (s *Store) ListWaitingMessages(ctx context.Context, tenant uuid.UUID, after *Position, limit int) ([]WaitingMessage, error) {
	return waitingMessages.page(ctx, s.pool, tenant, after, limit)
}

// GetWaitingMessage returns a waiting message of tenant.
func (s *Store) GetWaitingMessage(ctx context.Context, tenant, id uuid.UUID) (WaitingMessage, error) {
	return waitingMessages.one(ctx, s.pool, tenant, id, false)
}

func waitingMessageRecord(tenant uuid.UUID, w WaitingMessage, deleted bool, now time.Time) (outbox.Record, error) {
	return configRecord("waiting_message", events.TypeWaitingMessage, tenant, w.ID, events.WaitingMessage{
		ID: w.ID.String(), TenantID: tenant.String(), Name: w.Name, Deleted: deleted,
		Hours: events.WaitingHours{New: w.Hours.New, HelpRequested: w.Hours.HelpRequested, External: w.Hours.External},
	}, now)
}

// CreateWaitingMessage creates a waiting message of tenant and announces
// it. It is sent once it is assigned to the tenant or a queue.
func (s *Store) CreateWaitingMessage(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, spec WaitingMessageSpec, now time.Time) (WaitingMessage, error) {
	if err := spec.Validate(); err != nil {
		return WaitingMessage{}, err
	}
	w := WaitingMessage{ID: uuid.New(), Name: spec.Name, Subject: spec.Subject, Body: spec.Body, Hours: spec.Hours, CreatedAt: now, UpdatedAt: now}
	_, err := tx.Exec(ctx, `INSERT INTO inbox.waiting_messages (id, tenant_id, name, subject, body, hours_new, hours_help_requested, hours_external, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`, w.ID, tenant, w.Name, w.Subject, w.Body, w.Hours.New, w.Hours.HelpRequested, w.Hours.External, now)
	if uniqueViolation(err) {
		return WaitingMessage{}, domain.Invalid("name", "another waiting message has this name")
	}
	if err != nil {
		return WaitingMessage{}, fmt.Errorf("create waiting message: %w", err)
	}
	rec, err := waitingMessageRecord(tenant, w, false, now)
	if err != nil {
		return WaitingMessage{}, err
	}
	return w, s.outbox.Add(ctx, tx, rec)
}

// UpdateWaitingMessage changes a waiting message of tenant: fn changes
// its spec, which is then validated, written and announced. It takes
// effect at once, for conversations already waiting too.
func (s *Store) UpdateWaitingMessage(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time, fn func(spec *WaitingMessageSpec)) (WaitingMessage, error) {
	w, err := waitingMessages.one(ctx, tx, tenant, id, true)
	if err != nil {
		return WaitingMessage{}, err
	}
	spec := WaitingMessageSpec{Name: w.Name, Subject: w.Subject, Body: w.Body, Hours: w.Hours}
	fn(&spec)
	if err := spec.Validate(); err != nil {
		return WaitingMessage{}, err
	}
	_, err = tx.Exec(ctx, `UPDATE inbox.waiting_messages SET name = $2, subject = $3, body = $4, hours_new = $5, hours_help_requested = $6,
		hours_external = $7, updated_at = $8 WHERE id = $1`, id, spec.Name, spec.Subject, spec.Body, spec.Hours.New, spec.Hours.HelpRequested, spec.Hours.External, now)
	if uniqueViolation(err) {
		return WaitingMessage{}, domain.Invalid("name", "another waiting message has this name")
	}
	if err != nil {
		return WaitingMessage{}, fmt.Errorf("update waiting message: %w", err)
	}
	w.Name, w.Subject, w.Body, w.Hours, w.UpdatedAt = spec.Name, spec.Subject, spec.Body, spec.Hours, now
	rec, err := waitingMessageRecord(tenant, w, false, now)
	if err != nil {
		return WaitingMessage{}, err
	}
	return w, s.outbox.Add(ctx, tx, rec)
}

// DeleteWaitingMessage deletes a waiting message of tenant, even while it
// is assigned: the tenant and queues that had it lose it (ON DELETE SET
// NULL), and the sends already scheduled are cancelled. Each of them is
// announced again.
func (s *Store) DeleteWaitingMessage(ctx context.Context, tx pgx.Tx, tenant, id uuid.UUID, now time.Time) error {
	w, err := waitingMessages.one(ctx, tx, tenant, id, true)
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT id FROM inbox.queues WHERE tenant_id = $1 AND waiting_message_id = $2 ORDER BY id FOR UPDATE`, tenant, id)
	if err != nil {
		return fmt.Errorf("find queues of waiting message: %w", err)
	}
	queues, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("find queues of waiting message: %w", err)
	}
	a, err := tenantAutomation(ctx, tx, tenant, true)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM inbox.waiting_messages WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete waiting message: %w", err)
	}
	rec, err := waitingMessageRecord(tenant, w, true, now)
	if err != nil {
		return err
	}
	recs := []outbox.Record{rec}
	if a.WaitingMessageID != nil && *a.WaitingMessageID == id {
		a.WaitingMessageID = nil
		rec, err := automationRecord(tenant, a, now)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	for _, q := range queues {
		qs, err := queueKind.get(ctx, tx, tenant, q)
		if err != nil {
			return err
		}
		rec, err := queueRecord(ctx, tx, tenant, qs, now)
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	return s.outbox.Add(ctx, tx, recs...)
}

// announceAutomation lists the automation configuration of every tenant,
// for AnnounceConfig: waiting messages, tenant settings and queues.
func announceAutomation(ctx context.Context, tx pgx.Tx, now time.Time) ([]outbox.Record, error) {
	var recs []outbox.Record
	for _, q := range []struct {
		what, sql string
		record    func(row pgx.CollectableRow) (outbox.Record, error)
	}{
		{"waiting messages", `SELECT tenant_id, ` + waitingMessageColumns + ` FROM inbox.waiting_messages ORDER BY tenant_id, id`,
			func(row pgx.CollectableRow) (outbox.Record, error) {
				var (
					tenant uuid.UUID
					w      WaitingMessage
				)
				if err := row.Scan(&tenant, &w.ID, &w.Name, &w.Subject, &w.Body, &w.Hours.New, &w.Hours.HelpRequested, &w.Hours.External,
					&w.CreatedAt, &w.UpdatedAt); err != nil {
					return outbox.Record{}, err
				}
				return waitingMessageRecord(tenant, w, false, now)
			}},
		{"tenant automation", `SELECT id, automation, waiting_message_id FROM inbox.tenants ORDER BY id`,
			func(row pgx.CollectableRow) (outbox.Record, error) {
				var (
					tenant uuid.UUID
					raw    []byte
					wm     *uuid.UUID
					a      TenantAutomation
				)
				if err := row.Scan(&tenant, &raw, &wm); err != nil {
					return outbox.Record{}, err
				}
				if err := decodeSettings(raw, wm, &a); err != nil {
					return outbox.Record{}, err
				}
				return automationRecord(tenant, a, now)
			}},
		{"queues", `SELECT tenant_id, id, name, created_at, automation, waiting_message_id, routing FROM inbox.queues ORDER BY tenant_id, id`,
			func(row pgx.CollectableRow) (outbox.Record, error) {
				var (
					tenant  uuid.UUID
					q       Queue
					raw     []byte
					wm      *uuid.UUID
					a       QueueAutomation
					routing *events.QueueRouting
				)
				if err := row.Scan(&tenant, &q.ID, &q.Name, &q.CreatedAt, &raw, &wm, &routing); err != nil {
					return outbox.Record{}, err
				}
				if err := decodeSettings(raw, wm, &a); err != nil {
					return outbox.Record{}, err
				}
				return queueKind.record(tenant, q, a.event(), routing, false, now)
			}},
	} {
		rows, err := tx.Query(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", q.what, err)
		}
		some, err := pgx.CollectRows(rows, q.record)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", q.what, err)
		}
		recs = append(recs, some...)
	}
	return recs, nil
}
