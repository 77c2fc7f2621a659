package smtpsend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/blob"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/sendledger"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// fixture is a handler over a real ledger and an in-process SMTP server.
type fixture struct {
	ts        *testServer
	ledger    *Ledger
	h         *Handler
	mailboxes map[string]events.Mailbox
	blobs     *blob.Dir

	mu          sync.Mutex
	published   []events.Delivery
	publishErrs []error // returned by the next publishes, in order
	appended    []string
}

func (f *fixture) deliveries() []events.Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]events.Delivery(nil), f.published...)
}

func (f *fixture) AppendSent(_ context.Context, mb events.Mailbox, msg Outgoing) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appended = append(f.appended, mb.SentFolder+"/"+msg.MessageID)
	return nil
}

// newFixture builds a handler on ledger, with mailbox mb-1 served by a new
// SMTP server with STARTTLS, and a retry policy of 4 quick attempts.
func newFixture(t *testing.T, ledger *Ledger) *fixture {
	t.Helper()
	blobs, err := blob.NewDir(t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { _ = blobs.Close() })
	f := &fixture{ts: startServer(t, startTLSServer), ledger: ledger, blobs: blobs}
	mb := testMailbox()
	mb.SMTP = f.ts.server(events.TLSStartTLS)
	mb.SentFolder = "Sent"
	f.mailboxes = map[string]events.Mailbox{mb.ID: mb}
	h, err := NewHandler(HandlerConfig{
		Ledger:    ledger,
		Transport: testSender(),
		Mailboxes: func(_ context.Context, tenantID, id string) (events.Mailbox, error) {
			mb, ok := f.mailboxes[id]
			if !ok || mb.TenantID != tenantID {
				return events.Mailbox{}, fmt.Errorf("mailbox %s: %w", id, ErrUnknownMailbox)
			}
			return mb, nil
		},
		Threads: func(_ context.Context, cmd events.SendMessage) (Thread, error) {
			return Thread{ParentReferences: []string{"root@customer.example"}, Subject: "Order"}, nil
		},
		Publish: func(_ context.Context, d events.Delivery) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.publishErrs) > 0 {
				err := f.publishErrs[0]
				f.publishErrs = f.publishErrs[1:]
				return err
			}
			f.published = append(f.published, d)
			return nil
		},
		Blobs:  blobs,
		Sent:   f,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Retry:  retry.Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond, Multiplier: 2, MaxAttempts: 4},
	})
	require.NoError(t, err)
	f.h = h
	return f
}

func TestHandler(t *testing.T) {
	pool := testkit.Postgres(t)
	ctx := testkit.Context(t)
	require.NoError(t, Migrate(ctx, pool))
	require.NoError(t, Migrate(ctx, pool), "migrating twice is harmless")
	ledger := NewLedger(pool)

	record := func(t *testing.T, id string) Record {
		t.Helper()
		rec, ok, err := ledger.Get(ctx, id)
		require.NoError(t, err)
		require.True(t, ok, "no ledger row for %s", id)
		return rec
	}

	t.Run("sends once, a replay only publishes again", func(t *testing.T) {
		f := newFixture(t, ledger)
		cmd := testCommand("h-sent")
		require.NoError(t, f.h.Handle(ctx, cmd))

		msgs := f.ts.messages()
		require.Len(t, msgs, 1)
		require.True(t, msgs[0].TLS)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateSent, rec.State)
		require.Equal(t, 1, rec.Attempts)
		require.Equal(t, "sb.h-sent@shop.example", rec.ProviderID)
		require.Equal(t, []string{"Sent/sb.h-sent@shop.example"}, f.appended)
		first := f.deliveries()
		require.Len(t, first, 1)
		require.Equal(t, events.Delivery{MessageID: "h-sent", TenantID: "t-1", Status: events.DeliverySent, At: rec.UpdatedAt.UTC()}, first[0])

		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Len(t, f.ts.messages(), 1, "a replay must not send again")
		require.Equal(t, []events.Delivery{first[0], first[0]}, f.deliveries(), "a replay publishes the same status again")
		require.Len(t, f.appended, 1)
	})

	t.Run("4xx then success is retried and sent once", func(t *testing.T) {
		f := newFixture(t, ledger)
		f.ts.failNextData(smtpErr(451, "Greylisted"), smtpErr(421, "Busy"))
		cmd := testCommand("h-retry")
		require.NoError(t, f.h.Handle(ctx, cmd))

		require.Len(t, f.ts.messages(), 1)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateSent, rec.State)
		require.Equal(t, 3, rec.Attempts)
		require.Equal(t, "421 4.0.0 Busy", rec.LastError, "the last retried failure stays for the record")
		d := f.deliveries()
		require.Len(t, d, 1)
		require.Equal(t, events.DeliverySent, d[0].Status)
	})

	t.Run("5xx fails with the server's reply", func(t *testing.T) {
		f := newFixture(t, ledger)
		f.ts.failNextData(smtpErr(554, "Message rejected as spam"))
		cmd := testCommand("h-5xx")
		require.NoError(t, f.h.Handle(ctx, cmd))

		require.Empty(t, f.ts.messages())
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateFailed, rec.State)
		require.Equal(t, 1, rec.Attempts)
		want := events.Delivery{MessageID: "h-5xx", TenantID: "t-1", Status: events.DeliveryFailed, Error: "554 5.0.0 Message rejected as spam", At: rec.UpdatedAt.UTC()}
		require.Equal(t, []events.Delivery{want}, f.deliveries())

		// A replay neither sends nor fails again: it reports the same.
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Empty(t, f.ts.messages())
		require.Equal(t, []events.Delivery{want, want}, f.deliveries())
		require.Empty(t, f.appended)
	})

	t.Run("temporary failures exhaust the attempts", func(t *testing.T) {
		f := newFixture(t, ledger)
		f.ts.failNextData(smtpErr(451, "a"), smtpErr(451, "b"), smtpErr(451, "c"), smtpErr(451, "d"), smtpErr(451, "e"))
		cmd := testCommand("h-exhausted")
		require.NoError(t, f.h.Handle(ctx, cmd))

		require.Empty(t, f.ts.messages())
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateFailed, rec.State)
		require.Equal(t, 4, rec.Attempts)
		require.Equal(t, "gave up after 4 attempts: 451 4.0.0 d", rec.LastError)
		d := f.deliveries()
		require.Len(t, d, 1)
		require.Equal(t, events.DeliveryFailed, d[0].Status)
		require.Equal(t, rec.LastError, d[0].Error)
	})

	t.Run("unknown, deleted or foreign mailbox fails", func(t *testing.T) {
		f := newFixture(t, ledger)
		deleted := f.mailboxes["mb-1"]
		deleted.ID, deleted.Deleted = "mb-deleted", true
		f.mailboxes[deleted.ID] = deleted
		for _, mbID := range []string{"mb-unknown", "mb-deleted"} {
			cmd := testCommand("h-" + mbID)
			cmd.ChannelAccountID = mbID
			require.NoError(t, f.h.Handle(ctx, cmd))
			rec := record(t, cmd.MessageID)
			require.Equal(t, sendledger.StateFailed, rec.State)
			require.Equal(t, 0, rec.Attempts)
			require.Contains(t, rec.LastError, mbID)
		}
		cmd := testCommand("h-foreign")
		cmd.TenantID = "t-other"
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Equal(t, sendledger.StateFailed, record(t, cmd.MessageID).State)

		require.Empty(t, f.ts.messages())
		d := f.deliveries()
		require.Len(t, d, 3)
		for _, x := range d {
			require.Equal(t, events.DeliveryFailed, x.Status)
		}
		require.Equal(t, "t-other", d[2].TenantID)
	})

	t.Run("a message that cannot be composed fails", func(t *testing.T) {
		f := newFixture(t, ledger)
		cmd := testCommand("h-bad-to")
		cmd.To = "not an address"
		require.NoError(t, f.h.Handle(ctx, cmd))
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateFailed, rec.State)
		require.Contains(t, rec.LastError, "not an address")
		require.Empty(t, f.ts.messages())
	})

	t.Run("attachments are read from the blob store", func(t *testing.T) {
		f := newFixture(t, ledger)
		ref, err := f.blobs.Put(ctx, "t-1/uploads", strings.NewReader("%PDF-1.4 invoice"), 1<<10)
		require.NoError(t, err)
		cmd := testCommand("h-attached")
		cmd.Attachments = []events.Attachment{{Name: "invoice.pdf", ContentType: "application/pdf", Size: ref.Size, BlobKey: ref.Key}}
		cmd.ReplyTo = "agent@shop.example"
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Equal(t, sendledger.StateSent, record(t, cmd.MessageID).State)
		msgs := f.ts.messages()
		require.Len(t, msgs, 1)
		p := parseMixed(t, msgs[0].Data)
		require.Equal(t, []string{"agent@shop.example"}, p.replyTo)
		require.Len(t, p.files, 1)
		require.Equal(t, file{name: "invoice.pdf", contentType: "application/pdf", content: "%PDF-1.4 invoice"}, p.files[0])
	})

	t.Run("an attachment missing from the blob store fails at once", func(t *testing.T) {
		f := newFixture(t, ledger)
		cmd := testCommand("h-lost-attachment")
		key := "t-1/uploads/" + strings.Repeat("ab", 32)
		cmd.Attachments = []events.Attachment{{Name: "lost.pdf", ContentType: "application/pdf", Size: 3, BlobKey: key}}
		require.NoError(t, f.h.Handle(ctx, cmd))
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateFailed, rec.State)
		require.Equal(t, 0, rec.Attempts, "nothing was submitted")
		require.Contains(t, rec.LastError, "missing from the blob store")
		require.Contains(t, rec.LastError, key)
		require.Empty(t, f.ts.messages())
		d := f.deliveries()
		require.Len(t, d, 1)
		require.Equal(t, events.DeliveryFailed, d[0].Status)
		require.Contains(t, d[0].Error, "lost.pdf")
	})

	t.Run("a blob store that cannot be read is tried again later", func(t *testing.T) {
		f := newFixture(t, ledger)
		f.h.cfg.Blobs = brokenBlobs{}
		cmd := testCommand("h-blobs-down")
		cmd.Attachments = []events.Attachment{{Name: "a.txt", ContentType: "text/plain", Size: 1, BlobKey: "t-1/uploads/" + strings.Repeat("cd", 32)}}
		err := f.h.Handle(ctx, cmd)
		require.Error(t, err)
		require.NotErrorIs(t, err, ErrCompose)
		_, ok, err := ledger.Get(ctx, cmd.MessageID)
		require.NoError(t, err)
		require.False(t, ok, "nothing is recorded: the command is handled again")
		require.Empty(t, f.deliveries())
		require.Empty(t, f.ts.messages())
	})

	t.Run("crash after sending, before the offset commit", func(t *testing.T) {
		// The process sent the message and recorded it, then died before
		// the delivery was acknowledged by Kafka and the offset committed.
		f := newFixture(t, ledger)
		f.publishErrs = []error{errors.New("broker unavailable")}
		cmd := testCommand("h-crash-commit")
		require.Error(t, f.h.Handle(ctx, cmd), "an unpublished status must not let the offset be committed")
		require.Len(t, f.ts.messages(), 1)

		// Kafka delivers the command again to the restarted process.
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Len(t, f.ts.messages(), 1, "the replay must not send a second time")
		d := f.deliveries()
		require.Len(t, d, 1)
		require.Equal(t, events.DeliverySent, d[0].Status)
	})

	t.Run("crash between the server's 250 and recording sent", func(t *testing.T) {
		// The documented window: the attempt was recorded and the server
		// took the message, then the process died. The replay sends again,
		// with the same Message-ID, so that receivers collapse the copies.
		f := newFixture(t, ledger)
		cmd := testCommand("h-crash-250")
		mb := f.mailboxes["mb-1"]
		out, err := Compose(cmd, mb, Thread{}, time.Now(), nil)
		require.NoError(t, err)
		// The dead process's attempt: its claim has run out.
		_, v, err := ledger.Begin(ctx, sendledger.Attempt[Details]{Ref: sendledger.Ref{ID: cmd.MessageID, TenantID: cmd.TenantID, ChannelAccountID: mb.ID},
			ProviderID: out.MessageID, Lease: time.Minute, At: time.Now().Add(-time.Hour)})
		require.NoError(t, err)
		require.Equal(t, sendledger.Proceed, v)
		require.NoError(t, testSender().Send(ctx, mb.SMTP, out))

		require.NoError(t, f.h.Handle(ctx, cmd))
		msgs := f.ts.messages()
		require.Len(t, msgs, 2)
		ids := make([]string, 0, 2)
		for _, m := range msgs {
			r, err := mail.CreateReader(bytesReader(m.Data))
			require.NoError(t, err)
			id, err := r.Header.MessageID()
			require.NoError(t, err)
			ids = append(ids, id)
		}
		require.Equal(t, []string{out.MessageID, out.MessageID}, ids)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateSent, rec.State)
		require.Equal(t, 2, rec.Attempts)
	})

	t.Run("a replay after the attempts ran out fails without sending", func(t *testing.T) {
		f := newFixture(t, ledger)
		cmd := testCommand("h-ran-out")
		ref := sendledger.Ref{ID: cmd.MessageID, TenantID: cmd.TenantID, ChannelAccountID: "mb-1"}
		for range 4 {
			s, v, err := ledger.Begin(ctx, sendledger.Attempt[Details]{Ref: ref, Lease: time.Minute, At: time.Now()})
			require.NoError(t, err)
			require.Equal(t, sendledger.Proceed, v)
			_, err = ledger.Retry(ctx, sendledger.Outcome[Details]{Ref: ref, Claim: s.Claim, Reason: "421 busy", Resolved: true, At: time.Now()})
			require.NoError(t, err)
		}
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Empty(t, f.ts.messages())
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StateFailed, rec.State)
		require.Equal(t, "gave up after 4 attempts: 421 busy", rec.LastError)
	})

	t.Run("cancelled while waiting to retry leaves it pending", func(t *testing.T) {
		f := newFixture(t, ledger)
		f.h.cfg.Retry = retry.Policy{Initial: time.Hour, Max: time.Hour, Multiplier: 1, MaxAttempts: 4}
		f.ts.failNextData(smtpErr(451, "later"))
		cmd := testCommand("h-cancel")
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- f.h.Handle(cctx, cmd) }()
		testkit.Eventually(t, 10*time.Second, func() bool {
			rec, ok, err := ledger.Get(ctx, cmd.MessageID)
			return err == nil && ok && rec.LastError != ""
		}, "the first attempt never failed")
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
		rec := record(t, cmd.MessageID)
		require.Equal(t, sendledger.StatePending, rec.State)
		require.Empty(t, f.deliveries())

		// Redelivered, it is sent.
		require.NoError(t, f.h.Handle(ctx, cmd))
		require.Len(t, f.ts.messages(), 1)
		require.Equal(t, 2, record(t, cmd.MessageID).Attempts)
	})

	t.Run("a message another consumer is sending is waited for, not sent twice", func(t *testing.T) {
		f := newFixture(t, ledger)
		clock := &waitingClock{waiting: make(chan struct{})}
		f.h.cfg.Clock = clock
		cmd := testCommand("h-busy")
		ref := sendledger.Ref{ID: cmd.MessageID, TenantID: cmd.TenantID, ChannelAccountID: "mb-1"}
		other, v, err := ledger.Begin(ctx, sendledger.Attempt[Details]{Ref: ref, Lease: time.Hour, At: time.Now()})
		require.NoError(t, err)
		require.Equal(t, sendledger.Proceed, v)

		done := make(chan error, 1)
		go func() { done <- f.h.Handle(ctx, cmd) }()
		select {
		case <-clock.waiting:
		case err := <-done:
			t.Fatalf("Handle returned while another consumer held the message: %v", err)
		}
		// The other consumer's attempt succeeds.
		_, err = ledger.Sent(ctx, sendledger.Outcome[Details]{Ref: ref, Claim: other.Claim, ProviderID: "sb.h-busy@shop.example", At: time.Now()})
		require.NoError(t, err)
		require.NoError(t, <-done)
		require.Empty(t, f.ts.messages(), "sent by the other consumer only")
		d := f.deliveries()
		require.Len(t, d, 1)
		require.Equal(t, events.DeliverySent, d[0].Status)
		require.Equal(t, 1, record(t, cmd.MessageID).Attempts)
	})

	t.Run("a command without ids is invalid", func(t *testing.T) {
		f := newFixture(t, ledger)
		require.ErrorIs(t, f.h.Handle(ctx, events.SendMessage{TenantID: "t-1"}), ErrInvalidCommand)
		require.Empty(t, f.deliveries())
	})
}

func TestNewHandlerRequires(t *testing.T) {
	_, err := NewHandler(HandlerConfig{})
	require.Error(t, err)
}

// waitingClock tells the real time, closes waiting at the first wait, and
// makes every wait short.
type waitingClock struct {
	once    sync.Once
	waiting chan struct{}
}

func (c *waitingClock) Now() time.Time { return time.Now() }
func (c *waitingClock) After(time.Duration) <-chan time.Time {
	c.once.Do(func() { close(c.waiting) })
	return time.After(10 * time.Millisecond)
}

// brokenBlobs is a blob store that is down.
type brokenBlobs struct{}

func (brokenBlobs) Open(context.Context, string) (io.ReadCloser, error) {
	return nil, errors.New("blob store: connection refused")
}
