package imapsync

import (
	"context"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// AppendSent copies a sent mail into the mailbox's folder (its Sent
// folder) over IMAP, marked \Seen, in a session of its own.
func AppendSent(ctx context.Context, mb events.Mailbox, folder string, raw []byte, dialTimeout time.Duration) error {
	if dialTimeout <= 0 {
		dialTimeout = DefaultDialTimeout
	}
	c, err := dial(ctx, mb.IMAP, dialTimeout, nil)
	if err != nil {
		return fmt.Errorf("append to %s of mailbox %s: %w", folder, mb.ID, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}, Time: time.Now()})
	if _, err := cmd.Write(raw); err != nil {
		return fmt.Errorf("append to %s of mailbox %s: %w", folder, mb.ID, err)
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("append to %s of mailbox %s: %w", folder, mb.ID, err)
	}
	if _, err := cmd.Wait(); err != nil {
		return fmt.Errorf("append to %s of mailbox %s: %w", folder, mb.ID, err)
	}
	_ = c.Logout().Wait()
	return nil
}
