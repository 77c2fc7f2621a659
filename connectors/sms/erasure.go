package sms

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// ErrInvalidErase marks an sb.erase.v1 event that cannot be applied (for
// the dead-letter topic).
var ErrInvalidErase = errors.New("invalid erase event")

// forget applies an erasure the inbox asks for (sb.erase.v1). What the
// SMS connector keeps of a message is its send ledger row: Twilio's SID,
// its answer and last error, and details (the customer's number, the
// sender, the encoding and segment count); MMS media are the inbox's
// blobs. So:
//
//   - every erased message's answer and error are blanked;
//   - for an erased contact, the customer's number is removed from the
//     details of every settled send (sent or failed) to them; a send still
//     open keeps it until it settles, since finding an attempt in doubt at
//     Twilio needs it;
//   - the opt-out record (account, number, opted out or in, when) is kept:
//     a customer who sent STOP must not be texted again, which needs the
//     number, and the record is the proof that the opt-out was honoured
//     (carriers' and Twilio's rules; CNIL and the TCPA alike).
//
// Applying it twice changes nothing more.
func (c *Connector) forget(ctx context.Context, e events.Erase) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidErase, err)
	}
	if e.Channel != events.ChannelSMS {
		return fmt.Errorf("%w: erasure %s is for channel %s", ErrInvalidErase, e.ID, e.Channel)
	}
	ids := e.MessageIDs()
	identities := e.Identities
	if identities == nil {
		identities = []string{}
	}
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sms.send_ledger SET answer = '', last_error = '' WHERE tenant_id = $1 AND id = ANY($2)`, e.TenantID, ids); err != nil {
			return fmt.Errorf("blank the sends' answers: %w", err)
		}
		if e.Reason != events.EraseContact {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE sms.send_ledger SET details = details - 'to'
			WHERE tenant_id = $1 AND state IN ('sent', 'failed') AND (id = ANY($2) OR details ->> 'to' = ANY($3))`, e.TenantID, ids, identities); err != nil {
			return fmt.Errorf("forget the numbers of settled sends: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply erasure %s: %w", e.ID, err)
	}
	c.log.InfoContext(ctx, "erasure applied", "erasure_id", e.ID, "tenant_id", e.TenantID, "reason", e.Reason,
		"messages", len(e.Messages), "identities", len(e.Identities))
	return nil
}
