package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Outbound conversations ([002]): an agent starts a conversation toward a
// contact of the customer base, by email or SMS, through a channel account
// of the tenant, and sends its first message at once.
//
// The conversation is opened in new, taken by the agent (assigned, the
// change audited as "outbound"), and the first message is a reply, sent
// exactly as replies are: it moves the conversation to answered and its
// send command goes to the channel's connector through the outbox. Both
// steps commit in one transaction, or neither does.
//
// Its thread key is what the channel's answer will carry, so that the
// customer's answer joins it: for SMS "<our number>:<their number>", the
// account's first number (the one the SMS connector sends from) and the
// recipient's, like an inbound text's; for email "outbound:<id>", which
// the email connector records with the Message-ID of the mail it sends,
// so that the answer's In-Reply-To (or the thread token of its subject
// or reply address) resolves to it.

// StartInput is a conversation to start.
type StartInput struct {
	Channel   string
	ContactID uuid.UUID
	AccountID uuid.UUID
	// To is the contact's identity on the channel to write to, normalised
	// (NormalizeIdentity); "" for the contact's first one.
	To string
	// QueueID is the queue of the conversation; nil for the channel
	// account's default queue.
	QueueID *uuid.UUID
	// IdempotencyKey, when set, names the start: a second start with the
	// same key by the same user returns the first one's conversation.
	IdempotencyKey string
}

// ThreadTakenError is domain.ErrConflict: the channel account and the
// customer already have a conversation on the thread a start would open
// (SMS: one conversation per pair of numbers). ConversationID names it
// when the principal may see it, else it is nil.
type ThreadTakenError struct {
	ConversationID *uuid.UUID
	State          domain.State
}

func (e *ThreadTakenError) Error() string {
	return "this number already has a conversation with the customer: write there (resume it if it is done)"
}
func (e *ThreadTakenError) Unwrap() error { return domain.ErrConflict }

// RecipientError is domain.ErrUnprocessable: the recipient of a start is
// not a contact of the tenant, or not one with an identity on the
// channel. Field is the request's field it refuses.
type RecipientError struct {
	Field, Reason string
}

func (e *RecipientError) Error() string { return e.Field + " " + e.Reason }
func (e *RecipientError) Unwrap() error { return domain.ErrUnprocessable }

// errKeyRace: a concurrent start with the same idempotency key committed
// first.
var errKeyRace = errors.New("a start with the same idempotency key committed first")

// StartConversation opens an outbound conversation as in says, taken by
// p (a user), and sends its first message with reply, which gets the
// conversation locked in tx and returns the reply's change (the API's
// reply path, which ends in Store.Reply). replayed is true when
// in.IdempotencyKey named an earlier start, whose conversation it returns
// as it is now.
func (s *Store) StartConversation(ctx context.Context, p domain.Principal, in StartInput, now time.Time,
	reply func(tx pgx.Tx, c *Conversation) (Change, error)) (c Conversation, replayed bool, err error) {
	user, err := uuid.Parse(p.UserID)
	if err != nil {
		return Conversation{}, false, fmt.Errorf("%w: a conversation is started by an agent, who takes it; an API token cannot", domain.ErrForbidden)
	}
	tenant, err := uuid.Parse(p.Tenant)
	if err != nil {
		return Conversation{}, false, domain.ErrNotFound
	}
	for attempt := 0; ; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			c, replayed, err = s.start(ctx, tx, p, tenant, user, in, now, reply)
			return err
		})
		if errors.Is(err, errKeyRace) && attempt == 0 {
			continue // the other start's conversation is found this time
		}
		return c, replayed, err
	}
}

func (s *Store) start(ctx context.Context, tx pgx.Tx, p domain.Principal, tenant, user uuid.UUID, in StartInput, now time.Time,
	reply func(tx pgx.Tx, c *Conversation) (Change, error)) (Conversation, bool, error) {
	if in.IdempotencyKey != "" {
		var id uuid.UUID
		err := tx.QueryRow(ctx, `SELECT id FROM inbox.conversations WHERE tenant_id = $1 AND started_by = $2 AND idempotency_key = $3`,
			tenant, user, in.IdempotencyKey).Scan(&id)
		switch {
		case err == nil:
			c, err := lockConversation(ctx, tx, p.Tenant, id)
			if err != nil {
				return Conversation{}, false, err
			}
			if !c.VisibleTo(p) {
				return Conversation{}, false, domain.ErrNotFound
			}
			return c, true, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return Conversation{}, false, fmt.Errorf("find the start of idempotency key: %w", err)
		}
	}
	what := map[string]string{events.ChannelEmail: "email", events.ChannelSMS: "SMS"}[in.Channel]
	var (
		channel  string
		defQueue *uuid.UUID
		number   string
	)
	err := tx.QueryRow(ctx, `SELECT channel, default_queue_id, coalesce(settings->'numbers'->>0, '')
		FROM inbox.channel_accounts WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL`, tenant, in.AccountID).
		Scan(&channel, &defQueue, &number)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && channel != in.Channel) {
		return Conversation{}, false, domain.Invalid("channel_account_id", fmt.Sprintf("is not an %s account of this tenant", what))
	}
	if err != nil {
		return Conversation{}, false, fmt.Errorf("find the channel account: %w", err)
	}
	if err := exists(ctx, tx, `SELECT EXISTS (SELECT 1 FROM inbox.contacts WHERE tenant_id = $1 AND id = $2)`, tenant, in.ContactID); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return Conversation{}, false, &RecipientError{"contact_id", "is not a contact of this tenant: the recipient is picked from the contacts"}
		}
		return Conversation{}, false, err
	}
	kind := map[string]string{events.ChannelEmail: "email address", events.ChannelSMS: "phone number"}[in.Channel]
	to := in.To
	if to != "" {
		var owner uuid.UUID
		err := tx.QueryRow(ctx, `SELECT contact_id FROM inbox.contact_identities WHERE tenant_id = $1 AND channel = $2 AND identity = $3`,
			tenant, in.Channel, to).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner != in.ContactID) {
			return Conversation{}, false, &RecipientError{"to", fmt.Sprintf("is not an %s of the contact", kind)}
		}
		if err != nil {
			return Conversation{}, false, fmt.Errorf("find the recipient: %w", err)
		}
	} else {
		// The first, as the contact's card lists them (by identity).
		err := tx.QueryRow(ctx, `SELECT identity FROM inbox.contact_identities WHERE tenant_id = $1 AND contact_id = $2 AND channel = $3
			ORDER BY identity LIMIT 1`, tenant, in.ContactID, in.Channel).Scan(&to)
		if errors.Is(err, pgx.ErrNoRows) {
			return Conversation{}, false, &RecipientError{"contact_id", fmt.Sprintf("has no %s: add one to the contact first", kind)}
		}
		if err != nil {
			return Conversation{}, false, fmt.Errorf("find the recipient: %w", err)
		}
	}
	queue := in.QueueID
	if queue == nil {
		queue = defQueue
	}
	if queue == nil {
		return Conversation{}, false, domain.Invalid("queue_id", "is required: the channel account has no default queue, and a conversation must be in a queue before anyone can reply")
	}
	if err := QueueInTenant(ctx, tx, tenant, *queue); err != nil {
		if errors.Is(err, domain.ErrNotFound) {
			return Conversation{}, false, domain.Invalid("queue_id", "is not a queue of this tenant")
		}
		return Conversation{}, false, err
	}
	if !p.Can(domain.PermSeeAll) && !slices.Contains(p.Queues, queue.String()) {
		field := "queue_id"
		if in.QueueID == nil {
			return Conversation{}, false, domain.Invalid(field, "is required: the channel account's default queue is not one of yours")
		}
		return Conversation{}, false, domain.Invalid(field, "is not one of your queues: the conversation would leave your sight once answered")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Conversation{}, false, fmt.Errorf("conversation id: %w", err)
	}
	thread := "outbound:" + id.String()
	if in.Channel == events.ChannelSMS {
		if number == "" {
			return Conversation{}, false, domain.Invalid("channel_account_id", "has no number to send from: a customer's answer to a Messaging Service cannot be matched to the conversation")
		}
		thread = number + ":" + to
		if err := threadFree(ctx, tx, p, in.AccountID, thread); err != nil {
			return Conversation{}, false, err
		}
	}
	var key *string
	if in.IdempotencyKey != "" {
		key = &in.IdempotencyKey
	}
	tag, err := tx.Exec(ctx, `INSERT INTO inbox.conversations AS c (id, tenant_id, contact_id, channel, channel_account_id, thread_key,
			state, queue_id, started_at, last_message_at, updated_at, state_since, unread, last_writer, recipient, started_by, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, 'new', $7, $8, $8, $8, $8, false, 'agent', $9, $10, $11)
		ON CONFLICT (channel_account_id, thread_key) DO NOTHING`,
		id, tenant, in.ContactID, in.Channel, in.AccountID, thread, queue, now, to, user, key)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.ConstraintName == "conversations_idempotency" {
		return Conversation{}, false, errKeyRace
	}
	if err != nil {
		return Conversation{}, false, fmt.Errorf("open the conversation: %w", err)
	}
	if tag.RowsAffected() == 0 { // a customer's text opened it meanwhile
		if err := threadFree(ctx, tx, p, in.AccountID, thread); err != nil {
			return Conversation{}, false, err
		}
		return Conversation{}, false, fmt.Errorf("open the conversation: thread %s is taken", thread)
	}
	c, err := lockConversation(ctx, tx, p.Tenant, id)
	if err != nil {
		return Conversation{}, false, err
	}
	out, err := s.apply(ctx, tx, p, c, now, func(tx pgx.Tx, c *Conversation) (Change, error) {
		c.PreviousState = c.State
		c.State = domain.StateAssigned
		c.Assignees = []uuid.UUID{user}
		c.LastAgentID = &user
		c.LastWriter = "agent"
		c.Unread = false
		taken := *c
		change, err := reply(tx, c)
		if err != nil {
			return Change{}, err
		}
		change.Earlier = &Earlier{Change: Change{Action: domain.ActionOutbound, Data: map[string]string{
			"channel_account_id": in.AccountID.String(), "queue_id": queue.String(), "contact_id": in.ContactID.String()}},
			Conversation: taken}
		return change, nil
	})
	return out, false, err
}

// threadFree refuses a thread the account already has a conversation on.
func threadFree(ctx context.Context, tx pgx.Tx, p domain.Principal, account uuid.UUID, thread string) error {
	rows, err := tx.Query(ctx, `SELECT `+conversationColumns+` FROM inbox.conversations c
		WHERE c.channel_account_id = $1 AND c.thread_key = $2`, account, thread)
	if err != nil {
		return fmt.Errorf("find the thread's conversation: %w", err)
	}
	c, err := pgx.CollectExactlyOneRow(rows, scanConversation)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find the thread's conversation: %w", err)
	}
	taken := &ThreadTakenError{}
	if c.VisibleTo(p) {
		taken.ConversationID, taken.State = &c.ID, c.State
	}
	return taken
}
