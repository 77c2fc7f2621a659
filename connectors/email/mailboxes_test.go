package email

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// syncLog records which mailbox settings run, in order.
type syncLog struct {
	mu      sync.Mutex
	started []events.Mailbox
	live    map[string]int
}

func (l *syncLog) sync(ctx context.Context, mb events.Mailbox) error {
	l.mu.Lock()
	l.started = append(l.started, mb)
	l.live[mb.ID]++
	l.mu.Unlock()
	<-ctx.Done()
	l.mu.Lock()
	l.live[mb.ID]--
	l.mu.Unlock()
	return ctx.Err()
}

func (l *syncLog) state() (int, map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	live := map[string]int{}
	for k, v := range l.live {
		if v != 0 {
			live[k] = v
		}
	}
	return len(l.started), live
}

func mailboxEvent(t *testing.T, mb events.Mailbox) events.Event {
	t.Helper()
	ev, err := events.New(events.TypeMailbox, "test", mb.TenantID, time.Now(), mb)
	require.NoError(t, err)
	return ev
}

func TestMailboxesFollowTheirSettings(t *testing.T) {
	ctx, cancel := context.WithCancel(testkit.Context(t))
	l := &syncLog{live: map[string]int{}}
	m := newMailboxes(slog.New(slog.DiscardHandler), testkit.Keyring(t), l.sync)
	mb := events.Mailbox{ID: "mb1", TenantID: "t1", Address: "support@example.com", IMAP: events.MailServer{Host: "imap.example.com", Port: 993, TLS: events.TLSImplicit}}

	// Learned before the connector runs: starts when it does.
	require.NoError(t, m.apply(ctx, mailboxEvent(t, mb)))
	done := make(chan error, 1)
	go func() { done <- m.run(ctx) }()
	testkit.Eventually(t, 5*time.Second, func() bool { n, live := l.state(); return n == 1 && live["mb1"] == 1 }, "the mailbox syncs")

	// The same settings again (the inbox re-announces at start): no restart.
	require.NoError(t, m.apply(ctx, mailboxEvent(t, mb)))
	// New settings: the old run stops before the new one starts.
	mb.IMAP.Host = "imap2.example.com"
	require.NoError(t, m.apply(ctx, mailboxEvent(t, mb)))
	testkit.Eventually(t, 5*time.Second, func() bool { n, live := l.state(); return n == 2 && live["mb1"] == 1 }, "the mailbox restarts once with its new settings")
	l.mu.Lock()
	require.Equal(t, "imap2.example.com", l.started[1].IMAP.Host)
	l.mu.Unlock()

	// Another tenant's mailbox, and another connector's configuration.
	require.NoError(t, m.apply(ctx, mailboxEvent(t, events.Mailbox{ID: "mb2", TenantID: "t2"})))
	other, err := events.New(events.TypeChatChannel, "test", "t1", time.Now(), events.ChatChannel{ID: "c", TenantID: "t1"})
	require.NoError(t, err)
	require.NoError(t, m.apply(ctx, other))
	testkit.Eventually(t, 5*time.Second, func() bool { _, live := l.state(); return live["mb2"] == 1 }, "the second mailbox syncs")

	// Deleted: it stops, and is no longer known to the sender.
	mb.Deleted = true
	require.NoError(t, m.apply(ctx, mailboxEvent(t, mb)))
	testkit.Eventually(t, 5*time.Second, func() bool { _, live := l.state(); return live["mb1"] == 0 }, "the deleted mailbox stops")
	_, ok := m.get("mb1")
	require.False(t, ok)

	// A malformed event is an error, not a crash.
	bad, err := events.New(events.TypeMailbox, "test", "t1", time.Now(), events.Mailbox{})
	require.NoError(t, err)
	require.Error(t, m.apply(ctx, bad))

	cancel()
	require.NoError(t, <-done)
	_, live := l.state()
	require.Empty(t, live, "every sync stopped with the connector")
}
