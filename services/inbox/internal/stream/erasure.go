package stream

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/segmentio/kafka-go"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// An admin's erasure must reach the replay too: a client resuming from a
// cursor older than the erasure would otherwise be sent the content again
// from the ring. The erasure's own conversation.changed event is read by
// every replica, which scrubs its ring when it handles it:
//
//   - anonymise and delete_message (data {"message_id"}): the message's
//     events are withheld;
//   - delete_conversation and erase_contact: every earlier event of the
//     conversation is withheld (their snapshots name the contact); the
//     erasure's event, which comes after them, says where it stands.
//
// A withheld event keeps its place in the ring (cursors stay valid), and
// no client is sent it any more.

// erasure is what an erasing event asks the hub to scrub.
type erasure struct {
	// message, when set, is the only message to scrub; otherwise every
	// event of conversation is.
	message      string
	conversation string
}

// erasingActions are the actions whose changed event scrubs the ring.
var erasingActions = []domain.Action{domain.ActionAnonymise, domain.ActionDeleteMessage, domain.ActionDeleteConversation, domain.ActionEraseContact}

// erasureOf reads what an erasing event scrubs; nil for every other
// record. Records are only decoded when their bytes name such an action.
func erasureOf(m kafka.Message) *erasure {
	if events.HeaderValue(m.Headers, events.HeaderType) != events.TypeConversationChanged {
		return nil
	}
	named := false
	for _, a := range erasingActions {
		if bytes.Contains(m.Value, []byte(`"`+string(a)+`"`)) {
			named = true
			break
		}
	}
	if !named {
		return nil
	}
	ev, _, err := events.FromMessage(context.Background(), m)
	if err != nil {
		return nil
	}
	var ch events.ConversationChanged
	if err := ev.Decode(&ch); err != nil {
		return nil
	}
	var conv struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(ch.Conversation, &conv); err != nil || conv.ID == "" {
		return nil
	}
	switch domain.Action(ch.Action) {
	case domain.ActionAnonymise, domain.ActionDeleteMessage:
		var data struct {
			MessageID string `json:"message_id"`
		}
		if err := json.Unmarshal(ch.Data, &data); err != nil || data.MessageID == "" {
			return nil
		}
		return &erasure{message: data.MessageID, conversation: conv.ID}
	case domain.ActionDeleteConversation, domain.ActionEraseContact:
		return &erasure{conversation: conv.ID}
	}
	return nil
}

// scrubLocked withholds the events of tenant's ring that er names, by
// replacing each with an entry no client gets (entries already handed to
// a client are not changed under it).
func (h *Hub) scrubLocked(tenant string, er *erasure) {
	for i := range h.n {
		at := (h.head + i) % len(h.ring)
		e := h.ring[at]
		if e.tenant != tenant || !e.ready() || e.conversation != er.conversation {
			continue
		}
		if er.message != "" && e.message != er.message {
			continue
		}
		gone := &entry{partition: e.partition, offset: e.offset, tenant: e.tenant, pos: e.pos, cursor: e.cursor}
		gone.once.Do(func() {}) // never prepared: withheld from everyone
		h.ringBytes += gone.size() - e.size()
		h.ring[at] = gone
	}
}
