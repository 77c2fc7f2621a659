package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/httpx"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// MaxStartAttachments bounds the files of a new conversation's first
// message ([002]: "jusqu'à 3 pièces jointes").
const MaxStartAttachments = 3

// MaxIdempotencyKeyBytes bounds the Idempotency-Key header.
const MaxIdempotencyKeyBytes = 200

func (a *API) registerStart(r Router) {
	a.handle(r, "POST /v1/conversations", a.startConversation)
}

// StartRequest is the body of POST /v1/conversations: a new conversation
// toward a contact, and its first message.
type StartRequest struct {
	// Channel is email or sms.
	Channel string `json:"channel"`
	// ContactID is the recipient, picked from the contacts.
	ContactID string `json:"contact_id"`
	// ChannelAccountID is the mailbox or the SMS account it goes through.
	ChannelAccountID string `json:"channel_account_id"`
	// To is which of the contact's identities on the channel; by default
	// their first one.
	To string `json:"to,omitempty"`
	// QueueID is the conversation's queue; by default the channel
	// account's default queue.
	QueueID string `json:"queue_id,omitempty"`
	// The first message, as a reply's.
	Text        string   `json:"text"`
	Subject     string   `json:"subject,omitempty"`
	CC          []string `json:"cc,omitempty"`
	Attachments []string `json:"attachments,omitempty"`
	ReplyTo     string   `json:"reply_to,omitempty"`
}

// startConversation opens an outbound conversation ([002]) and sends its
// first message through the reply path: the same checks (text, subject,
// CC, attachments, reply-to, mandatory tags, SMS consent), the same
// stored message and send command.
func (a *API) startConversation(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
	if p.UserID == "" {
		return fmt.Errorf("%w: a conversation is started by an agent, who takes it; an API token cannot", domain.ErrForbidden)
	}
	key := r.Header.Get("Idempotency-Key")
	if len(key) > MaxIdempotencyKeyBytes || strings.IndexFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		return domain.Invalid("Idempotency-Key", fmt.Sprintf("must be 1 to %d printable ASCII characters without spaces", MaxIdempotencyKeyBytes))
	}
	var in StartRequest
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Channel != events.ChannelEmail && in.Channel != events.ChannelSMS {
		return domain.Invalid("channel", "must be email or sms")
	}
	contact, err := uuid.Parse(in.ContactID)
	if err != nil {
		return domain.Invalid("contact_id", "must be a contact id")
	}
	account, err := uuid.Parse(in.ChannelAccountID)
	if err != nil {
		return domain.Invalid("channel_account_id", "must be the id of a mailbox or an SMS account")
	}
	var queue *uuid.UUID
	if in.QueueID != "" {
		q, err := uuid.Parse(in.QueueID)
		if err != nil {
			return domain.Invalid("queue_id", "must be a queue id")
		}
		queue = &q
	}
	to := in.To
	if to != "" {
		id, err := store.NormalizeIdentity(store.ContactIdentity{Channel: in.Channel, Identity: to})
		if err != nil {
			var fe *domain.FieldError
			if errors.As(err, &fe) {
				return domain.Invalid("to", fe.Reason)
			}
			return err
		}
		to = id.Identity
	}
	if len(in.Attachments) > MaxStartAttachments {
		return domain.Invalid("attachments", fmt.Sprintf("must list at most %d uploads", MaxStartAttachments))
	}
	if in.Channel == events.ChannelEmail && strings.TrimSpace(in.Subject) == "" {
		return domain.Invalid("subject", "is required for an email")
	}
	d, err := checkReply(p, ReplyRequest{Text: in.Text, Subject: in.Subject, CC: in.CC, Attachments: in.Attachments, ReplyTo: in.ReplyTo})
	if err != nil {
		return err
	}
	c, replayed, err := a.Store.StartConversation(r.Context(), p,
		store.StartInput{Channel: in.Channel, ContactID: contact, AccountID: account, To: to, QueueID: queue, IdempotencyKey: key},
		a.Clock.Now(), func(tx pgx.Tx, c *store.Conversation) (store.Change, error) {
			return a.sendReply(r.Context(), tx, p, c, d)
		})
	var (
		taken     *store.ThreadTakenError
		recipient *store.RecipientError
	)
	if errors.As(err, &recipient) {
		prob := httpx.NewProblem(http.StatusUnprocessableEntity, "the recipient is refused: "+recipient.Error())
		prob.Errors = []httpx.FieldError{{Field: recipient.Field, Reason: recipient.Reason}}
		return prob
	}
	if errors.As(err, &taken) {
		prob := httpx.NewProblem(http.StatusConflict, taken.Error())
		prob.Errors = []httpx.FieldError{{Field: "to", Reason: "already has a conversation on this number"}}
		if taken.ConversationID != nil {
			prob.Extra = map[string]any{"conversation_id": taken.ConversationID.String(), "state": taken.State}
		}
		return prob
	}
	if err != nil {
		return err
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
		return ok(w, c)
	}
	w.Header().Set("Location", "/v1/conversations/"+c.ID.String())
	return created(w, c)
}
