// Package qualify detects the language of customer messages behind
// ingestion: it reads the inbox's own message events and stores the
// language of each inbound message, and of its conversation when the
// message is the latest.
//
// Detection costs more CPU than storing a message (about 1 ms with lingua,
// see ADR 9), so it does not run on the ingestion path (except where a
// routing rule needs the language to place a new conversation): a burst of messages is stored at full speed, and
// qualified as soon as the burst is over. While ingestion is busy, each
// batch here waits, up to a bound, so that a sustained load delays
// languages but never starves them.
package qualify

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/language"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/store"
)

// ConsumerGroup is the qualifier's consumer group on sb.conversations.v1.
const ConsumerGroup = "switchboard-inbox-qualify"

// maxYield bounds how long a batch waits for ingestion to calm down.
const maxYield = 30 * time.Second

// Handler detects languages.
type Handler struct {
	store     *store.Store
	languages *language.Detector
	clock     retry.Clock
	// busy reports whether ingestion is at work.
	busy func() bool
}

// New builds the handler; busy reports whether ingestion is at work (nil:
// never).
func New(s *store.Store, languages *language.Detector, clock retry.Clock, busy func() bool) *Handler {
	if busy == nil {
		busy = func() bool { return false }
	}
	return &Handler{store: s, languages: languages, clock: clock, busy: busy}
}

// Handle detects the language of the inbound messages among msgs.
func (h *Handler) Handle(ctx context.Context, msgs []bus.Message) error {
	for start := h.clock.Now(); h.busy() && h.clock.Now().Sub(start) < maxYield; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.clock.After(100 * time.Millisecond):
		}
	}
	var found []store.Detected
	for _, m := range msgs {
		if m.Event.Type != events.TypeConversationMessage {
			continue
		}
		var data events.ConversationMessage
		if err := m.Event.Decode(&data); err != nil {
			return bus.Permanent(err)
		}
		var msg struct {
			ID             uuid.UUID `json:"id"`
			ConversationID uuid.UUID `json:"conversation_id"`
			Direction      string    `json:"direction"`
			Body           string    `json:"body"`
			Language       string    `json:"language"`
		}
		if err := json.Unmarshal(data.Message, &msg); err != nil {
			return bus.Permanent(fmt.Errorf("event %s: decode message: %w", m.Event.ID, err))
		}
		if msg.Direction != "inbound" || msg.Language != "" {
			continue
		}
		if lang := h.languages.Detect(msg.Body); lang != "" {
			found = append(found, store.Detected{MessageID: msg.ID, ConversationID: msg.ConversationID, Language: lang})
		}
	}
	if len(found) == 0 {
		return nil
	}
	if err := h.store.SetLanguages(ctx, found); err != nil {
		if pg.IsTransient(err) {
			return bus.Transient(err)
		}
		return err
	}
	return nil
}
