package store

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// The bot of a chat channel: a chat platform's own bot that answers
// customers before (or beside) agents. Agents block it on a conversation,
// unblock it, or ask it to run now; each is a command to the chat
// connector (events.TypeBotControl on TopicOutbound(chat), keyed by the
// conversation), which delivers it to the channel's endpoint. What the
// bot writes comes back as messages marked as the bot's (see Ingest).

// botAction is what the audit log calls a bot control action.
func botAction(action string) domain.Action {
	switch action {
	case domain.BotBlock:
		return domain.ActionBotBlocked
	case domain.BotUnblock:
		return domain.ActionBotUnblocked
	}
	return domain.ActionBotRun
}

// BotControl applies p's bot control action (domain.BotBlock, BotUnblock,
// BotRun) to c and returns the change, whose records carry the command to
// the chat connector under a new id. Blocking a blocked bot, or
// unblocking one that is not, is a no-op (Change.Noop): nothing is
// audited nor sent.
func (s *Store) BotControl(ctx context.Context, tx pgx.Tx, p domain.Principal, c *Conversation, action string, now time.Time) (Change, error) {
	blocked, noop, err := domain.BotControl(p, c.Domain(), action)
	if err != nil {
		return Change{}, err
	}
	if noop {
		return Change{Noop: true}, nil
	}
	cust, err := lastCustomer(ctx, tx, c)
	if err != nil {
		return Change{}, err
	}
	id := uuid.New()
	cmd := events.BotControl{ID: id.String(), TenantID: c.Tenant.String(), ConversationID: c.ID.String(),
		ChannelAccountID: c.ChannelAccountID.String(), ThreadKey: c.ThreadKey, To: cust.to, Action: action, Actor: actorOf(p)}
	if err := cmd.Validate(); err != nil {
		return Change{}, fmt.Errorf("bot control command of conversation %s: %w", c.ID, err)
	}
	ev, err := events.NewWithID(id.String(), events.TypeBotControl, EventSource, c.Tenant.String(), now, cmd)
	if err != nil {
		return Change{}, err
	}
	ev.Subject = c.ID.String()
	c.BotBlocked = blocked
	return Change{Action: botAction(action), Data: map[string]string{"action": action, "command_id": id.String()},
		Records: []outbox.Record{{Topic: events.TopicOutbound(events.ChannelChat), Key: c.EventKey(), Event: ev}}}, nil
}
