package imapsync

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

const wait = 30 * time.Second // generous: the machine is shared

func TestBackfillDeliversInOrderAndAdvances(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	bodies := ts.add(t, "INBOX", 10)
	mb := ts.mailbox()
	rec := newRecorder()
	var fetched, lag atomic.Int64
	lag.Store(-1)
	m := Metrics{Fetched: func(n int) { fetched.Add(int64(n)) }, Lag: func(n int) { lag.Store(int64(n)) }}

	cfg := fastConfig()
	cfg.BatchSize = 3 // several batches
	e.start(cfg, mb, rec, m, nil)

	validity := ts.status(t, "INBOX").UIDValidity
	e.waitCheckpoint(mb.ID, validity, 10)
	require.Equal(t, seq(1, 10), rec.uids())
	for i, raw := range rec.raws() {
		require.Equal(t, mb.ID, raw.MailboxID)
		require.Equal(t, validity, raw.UIDValidity)
		require.Equal(t, bodies[i], raw.Body, "body of UID %d", raw.UID)
		require.Equal(t, int64(len(bodies[i])), raw.Size)
		require.False(t, raw.InternalDate.IsZero())
		require.False(t, raw.TooLarge)
	}
	require.EqualValues(t, 10, fetched.Load())
	testkit.Eventually(t, wait, func() bool { return lag.Load() == 0 }, "lag never reported 0")
	// Read-only by default: EXAMINE and BODY.PEEK[] leave every mail unseen.
	require.EqualValues(t, 10, *ts.status(t, "INBOX").NumUnseen)
}

func TestIdleDeliversNewMail(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 2)
	mb := ts.mailbox()
	rec := newRecorder()
	idling := make(chan struct{}, 16)
	e.start(fastConfig(), mb, rec, Metrics{}, func() {
		select {
		case idling <- struct{}{}:
		default:
		}
	})

	testkit.Eventually(t, wait, func() bool { return rec.count() == 2 }, "backfill not delivered")
	select {
	case <-idling:
	case <-time.After(wait):
		t.Fatal("the syncer never started IDLE")
	}
	// PollInterval is an hour: only the server's EXISTS during IDLE can
	// bring this one in.
	ts.add(t, "INBOX", 1)
	testkit.Eventually(t, wait, func() bool { return rec.count() == 3 }, "mail appended during IDLE not delivered")
	require.Equal(t, seq(1, 3), rec.uids())
	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 3)
}

func TestRestartResumesFromCheckpoint(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 3)
	mb := ts.mailbox()
	validity := ts.status(t, "INBOX").UIDValidity

	first := newRecorder()
	stop := e.start(fastConfig(), mb, first, Metrics{}, nil)
	e.waitCheckpoint(mb.ID, validity, 3)
	stop()
	require.Equal(t, seq(1, 3), first.uids())

	ts.add(t, "INBOX", 2)
	second := newRecorder()
	e.start(fastConfig(), mb, second, Metrics{}, nil)
	e.waitCheckpoint(mb.ID, validity, 5)
	require.Equal(t, []uint32{4, 5}, second.uids())
}

func TestDeliverFailuresAreRetriedNeverSkipped(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 4)
	mb := ts.mailbox()
	rec := newRecorder()
	rec.fail = func(raw Raw, call int) error {
		if raw.UID == 2 && call <= 2 {
			return fmt.Errorf("kafka unavailable (call %d)", call)
		}
		return nil
	}
	var deliverErrors atomic.Int64
	e.start(fastConfig(), mb, rec, Metrics{DeliverErrors: func(n int) { deliverErrors.Add(int64(n)) }}, nil)

	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 4)
	require.Equal(t, seq(1, 4), rec.uids(), "accepted in order, each once")
	rec.mu.Lock()
	require.Equal(t, map[uint32]int{1: 1, 2: 3, 3: 1, 4: 1}, rec.calls, "only UID 2 offered again")
	rec.mu.Unlock()
	require.EqualValues(t, 2, deliverErrors.Load())
	require.Contains(t, e.logs.String(), "kafka unavailable")
}

func TestUIDValidityChangeReoffersEverything(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 3)
	mb := ts.mailbox()
	oldValidity := ts.status(t, "INBOX").UIDValidity

	stop := e.start(fastConfig(), mb, newRecorder(), Metrics{}, nil)
	e.waitCheckpoint(mb.ID, oldValidity, 3)
	stop()

	// Deleting and recreating the folder gives it a new UIDVALIDITY, and
	// its mail UIDs from 1 again, below the checkpoint.
	require.NoError(t, ts.user.Delete("INBOX"))
	require.NoError(t, ts.user.Create("INBOX", nil))
	ts.add(t, "INBOX", 2)
	newValidity := ts.status(t, "INBOX").UIDValidity
	require.NotEqual(t, oldValidity, newValidity)

	rec := newRecorder()
	var changes atomic.Int64
	e.start(fastConfig(), mb, rec, Metrics{UIDValidityChanges: func(n int) { changes.Add(int64(n)) }}, nil)
	e.waitCheckpoint(mb.ID, newValidity, 2)
	require.Equal(t, seq(1, 2), rec.uids())
	for _, raw := range rec.raws() {
		require.Equal(t, newValidity, raw.UIDValidity)
	}
	require.EqualValues(t, 1, changes.Load())
	require.Contains(t, e.logs.String(), "UIDVALIDITY changed")
}

func TestLargeBackfillNoneMissingNoneDoubled(t *testing.T) {
	if testing.Short() {
		t.Skip("5,000 mails")
	}
	const n = 5000
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", n)
	mb := ts.mailbox()
	rec := newRecorder()
	e.start(fastConfig(), mb, rec, Metrics{}, nil)

	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, n)
	require.Equal(t, seq(1, n), rec.uids())
}

func TestReconnectsAfterConnectionDrop(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 300)
	p := newProxy(t, net.JoinHostPort(ts.host, strconv.Itoa(ts.port)))
	mb := ts.mailbox()
	mb.IMAP.Port = p.port()

	rec := newRecorder()
	var dropped atomic.Bool
	rec.after = func(n int) {
		if n == 120 && !dropped.Swap(true) {
			p.drop() // mid-batch: the next command finds the connection gone
		}
	}
	var reconnects atomic.Int64
	cfg := fastConfig()
	cfg.BatchSize = 50
	e.start(cfg, mb, rec, Metrics{Reconnects: func(n int) { reconnects.Add(int64(n)) }}, nil)

	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 300)
	require.True(t, dropped.Load())
	require.Equal(t, seq(1, 300), rec.uids(), "none missing, none doubled")
	require.GreaterOrEqual(t, reconnects.Load(), int64(1))
	require.Contains(t, e.logs.String(), "reconnecting")
}

func TestReconnectsAfterDropDuringIdle(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 1)
	p := newProxy(t, net.JoinHostPort(ts.host, strconv.Itoa(ts.port)))
	mb := ts.mailbox()
	mb.IMAP.Port = p.port()
	rec := newRecorder()
	idling := make(chan struct{}, 16)
	e.start(fastConfig(), mb, rec, Metrics{}, func() {
		select {
		case idling <- struct{}{}:
		default:
		}
	})
	select {
	case <-idling:
	case <-time.After(wait):
		t.Fatal("the syncer never started IDLE")
	}
	p.drop()
	ts.add(t, "INBOX", 1) // arrives while the syncer is disconnected
	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 2)
	require.Equal(t, seq(1, 2), rec.uids())
	require.Contains(t, e.logs.String(), "connection closed during IDLE")
}

func TestReconnectsWhenServerIsDownAtFirst(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 2)
	// A port with nothing behind it yet.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	mb := ts.mailbox()
	mb.IMAP.Port = port

	rec := newRecorder()
	e.start(fastConfig(), mb, rec, Metrics{}, nil)
	testkit.Eventually(t, wait, func() bool { return strings.Count(e.logs.String(), "reconnecting") >= 2 }, "no reconnection attempts logged")
	require.Zero(t, rec.count())

	// The server comes up on that port.
	ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	p := &proxy{ln: ln, target: net.JoinHostPort(ts.host, strconv.Itoa(ts.port))}
	t.Cleanup(func() { ln.Close(); p.drop() })
	go p.serve()
	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 2)
	require.Equal(t, seq(1, 2), rec.uids())
}

func TestPollsWhenIdleIsNotUsed(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 1)
	mb := ts.mailbox()
	rec := newRecorder()
	cfg := fastConfig()
	cfg.ForcePoll = true
	cfg.PollInterval = 20 * time.Millisecond
	var idled atomic.Bool
	e.start(cfg, mb, rec, Metrics{}, func() { idled.Store(true) })

	testkit.Eventually(t, wait, func() bool { return rec.count() == 1 }, "backfill not delivered")
	ts.add(t, "INBOX", 2)
	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 3)
	require.Equal(t, seq(1, 3), rec.uids())
	require.False(t, idled.Load(), "IDLE was used although polling was forced")
}

func TestTooLargeIsDeliveredWithoutBodyAndPassed(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 1)
	big := ts.addMail(t, "INBOX", mail(99, 5000))
	ts.add(t, "INBOX", 1)
	mb := ts.mailbox()
	rec := newRecorder()
	var tooLarge atomic.Int64
	cfg := fastConfig()
	cfg.MaxMessageBytes = 2048
	e.start(cfg, mb, rec, Metrics{TooLarge: func(n int) { tooLarge.Add(int64(n)) }}, nil)

	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 3)
	raws := rec.raws()
	require.Equal(t, seq(1, 3), rec.uids())
	require.False(t, raws[0].TooLarge)
	require.True(t, raws[1].TooLarge)
	require.Nil(t, raws[1].Body)
	require.Equal(t, int64(len(big)), raws[1].Size)
	require.False(t, raws[2].TooLarge)
	require.NotEmpty(t, raws[2].Body)
	require.EqualValues(t, 1, tooLarge.Load())
}

func TestMarkSeenAndMoveTo(t *testing.T) {
	tests := []struct {
		name string
		caps imap.CapSet
	}{
		{"MOVE", imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}},
		{"COPY fallback", imap.CapSet{imap.CapIMAP4rev1: {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ts := newServer(t, serverOptions{caps: tt.caps})
			require.NoError(t, ts.user.Create("Archive", nil))
			ts.add(t, "INBOX", 3)
			mb := ts.mailbox()
			mb.MarkSeen = true
			mb.MoveTo = "Archive"
			rec := newRecorder()
			e.start(fastConfig(), mb, rec, Metrics{}, nil)

			e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 3)
			testkit.Eventually(t, wait, func() bool {
				in, arch := ts.status(t, "INBOX"), ts.status(t, "Archive")
				return *in.NumMessages == 0 && *arch.NumMessages == 3 && *arch.NumUnseen == 0
			}, "mail not marked seen and moved to Archive")
			require.Equal(t, seq(1, 3), rec.uids())

			// Moved mail leaves the folder; new mail still comes in once.
			ts.add(t, "INBOX", 1)
			e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 4)
			require.Equal(t, seq(1, 4), rec.uids())
		})
	}
}

func TestMarkSeenOnly(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 2)
	mb := ts.mailbox()
	mb.MarkSeen = true
	e.start(fastConfig(), mb, newRecorder(), Metrics{}, nil)
	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 2)
	testkit.Eventually(t, wait, func() bool {
		st := ts.status(t, "INBOX")
		return *st.NumMessages == 2 && *st.NumUnseen == 0
	}, "mail not marked seen")
}

func TestTransportsAndAuthentication(t *testing.T) {
	tests := []struct {
		name  string
		tls   string
		oauth bool
	}{
		{"implicit TLS, LOGIN", events.TLSImplicit, false},
		{"STARTTLS, LOGIN", events.TLSStartTLS, false},
		{"plain, XOAUTH2", events.TLSNone, true},
		{"implicit TLS, XOAUTH2", events.TLSImplicit, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			ts := newServer(t, serverOptions{tls: tt.tls})
			ts.add(t, "INBOX", 2)
			mb := ts.mailbox()
			if tt.oauth {
				mb.IMAP.Password = ""
				mb.IMAP.OAuth2Token = testToken
			}
			rec := newRecorder()
			e.start(fastConfig(), mb, rec, Metrics{}, nil)
			e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 2)
			require.Equal(t, seq(1, 2), rec.uids())
		})
	}
}

func TestCredentialsAreNeverLogged(t *testing.T) {
	for _, oauth := range []bool{false, true} {
		t.Run("oauth="+strconv.FormatBool(oauth), func(t *testing.T) {
			e := newEnv(t)
			ts := newServer(t, serverOptions{})
			ts.add(t, "INBOX", 1)
			mb := ts.mailbox()
			// Refused credentials: the failure is logged, again and again.
			if oauth {
				mb.IMAP.Password = ""
				mb.IMAP.OAuth2Token = testToken + "-expired"
			} else {
				mb.IMAP.Password = testPassword + "-old"
			}
			rec := newRecorder()
			e.start(fastConfig(), mb, rec, Metrics{}, nil)
			testkit.Eventually(t, wait, func() bool { return strings.Count(e.logs.String(), "authenticate as") >= 2 }, "authentication failure not logged")
			require.Zero(t, rec.count())
			logs := e.logs.String()
			require.NotContains(t, logs, testPassword)
			require.NotContains(t, logs, testToken)
		})
	}
}

func TestNewRefusesUnusableMailbox(t *testing.T) {
	cp := &Checkpoints{}
	deliver := newRecorder().deliver
	good := events.Mailbox{ID: "m", IMAP: events.MailServer{Host: "imap.example.com", Port: 993, TLS: "tls", Username: "u", Password: "p"}}
	tests := []struct {
		name   string
		change func(*events.Mailbox)
	}{
		{"no id", func(m *events.Mailbox) { m.ID = "" }},
		{"no host", func(m *events.Mailbox) { m.IMAP.Host = "" }},
		{"bad port", func(m *events.Mailbox) { m.IMAP.Port = 70000 }},
		{"bad TLS", func(m *events.Mailbox) { m.IMAP.TLS = "ssl" }},
		{"no user", func(m *events.Mailbox) { m.IMAP.Username = "" }},
		{"no secret", func(m *events.Mailbox) { m.IMAP.Password = "" }},
		{"move to itself", func(m *events.Mailbox) { m.MoveTo = "INBOX" }},
	}
	_, err := New(Config{}, good, deliver, cp, nil, Metrics{})
	require.NoError(t, err)
	for _, tt := range tests {
		mb := good
		tt.change(&mb)
		if _, err := New(Config{}, mb, deliver, cp, nil, Metrics{}); err == nil {
			t.Errorf("New with %s: no error", tt.name)
		} else if strings.Contains(err.Error(), "p\"") {
			t.Errorf("New with %s: error %q shows the password", tt.name, err)
		}
	}
}

func TestCheckpoints(t *testing.T) {
	ctx := testkit.Context(t)
	e := newEnv(t)
	// Migrate twice: replicas starting together, or a restart.
	require.NoError(t, Migrate(ctx, e.pool))
	cp := e.cp

	_, ok, err := cp.Get(ctx, "m1")
	require.NoError(t, err)
	require.False(t, ok)

	require.NoError(t, cp.Reset(ctx, "m1", 7, "imap://a@h/INBOX"))
	require.NoError(t, cp.Advance(ctx, "m1", 7, 10))
	require.NoError(t, cp.Advance(ctx, "m1", 7, 5), "an older UID is a no-op, not an error")
	got, ok, err := cp.Get(ctx, "m1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint32(10), got.LastUID, "never moves back")
	require.False(t, got.UpdatedAt.IsZero())

	err = cp.Advance(ctx, "m1", 8, 20)
	require.True(t, errors.Is(err, ErrUIDValidityChanged), "got %v", err)
	require.Equal(t, uint32(10), e.checkpoint("m1").LastUID)

	require.NoError(t, cp.Reset(ctx, "m1", 7, "imap://a@h/INBOX"), "the same UIDVALIDITY and source keep the position")
	require.Equal(t, uint32(10), e.checkpoint("m1").LastUID)
	require.NoError(t, cp.Reset(ctx, "m1", 8, "imap://a@h/INBOX"))
	require.Equal(t, Checkpoint{MailboxID: "m1", UIDValidity: 8, LastUID: 0, Source: "imap://a@h/INBOX"}, withoutTime(e.checkpoint("m1")))

	// Another folder with the same UIDVALIDITY starts over.
	require.NoError(t, cp.Advance(ctx, "m1", 8, 3))
	require.NoError(t, cp.Reset(ctx, "m1", 8, "imap://a@h/Support"))
	require.Equal(t, Checkpoint{MailboxID: "m1", UIDValidity: 8, LastUID: 0, Source: "imap://a@h/Support"}, withoutTime(e.checkpoint("m1")))

	// A checkpoint written before sources were kept is adopted, position
	// and all, under the same UIDVALIDITY.
	require.NoError(t, cp.Advance(ctx, "m4", 5, 9))
	require.Equal(t, "", e.checkpoint("m4").Source)
	require.NoError(t, cp.Reset(ctx, "m4", 5, "imap://a@h/INBOX"))
	require.Equal(t, Checkpoint{MailboxID: "m4", UIDValidity: 5, LastUID: 9, Source: "imap://a@h/INBOX"}, withoutTime(e.checkpoint("m4")))

	// The full unsigned 32-bit range fits.
	require.NoError(t, cp.Advance(ctx, "m2", 4294967295, 4294967295))
	require.Equal(t, Checkpoint{MailboxID: "m2", UIDValidity: 4294967295, LastUID: 4294967295}, withoutTime(e.checkpoint("m2")))
	require.Error(t, cp.Advance(ctx, "m3", 0, 1))
}

func withoutTime(c Checkpoint) Checkpoint {
	c.UpdatedAt = time.Time{}
	return c
}

func TestConfigValidate(t *testing.T) {
	var c Config
	fs := flagSet(&c)
	require.NoError(t, fs.Parse(nil))
	require.NoError(t, c.Validate("email."))
	require.Equal(t, DefaultBatchSize, c.BatchSize)

	c.BatchSize = 0
	c.IdleRefresh = 30 * time.Minute
	err := c.Validate("email.")
	require.Error(t, err)
	require.Contains(t, err.Error(), "email.imap.batch-size")
	require.Contains(t, err.Error(), "email.imap.idle-refresh")
}

func TestXOAUTH2InitialResponse(t *testing.T) {
	mech, ir, err := (&xoauth2Client{username: "u@example.com", token: "tok"}).Start()
	require.NoError(t, err)
	require.Equal(t, "XOAUTH2", mech)
	require.True(t, bytes.Equal([]byte("user=u@example.com\x01auth=Bearer tok\x01\x01"), ir))
	resp, err := (&xoauth2Client{}).Next([]byte(`{"status":"401"}`))
	require.NoError(t, err)
	require.NotNil(t, resp)
	require.Empty(t, resp)
}

func TestGapsInUIDs(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	ts.add(t, "INBOX", 6)
	// Expunge UIDs 2 and 4 as another client would.
	c, err := imapclient.DialInsecure(net.JoinHostPort(ts.host, strconv.Itoa(ts.port)), nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(testUser, testPassword).Wait())
	_, err = c.Select("INBOX", nil).Wait()
	require.NoError(t, err)
	require.NoError(t, c.Store(imap.UIDSetNum(2, 4), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close())
	_, err = c.Expunge().Collect()
	require.NoError(t, err)
	require.NoError(t, c.Logout().Wait())

	mb := ts.mailbox()
	rec := newRecorder()
	cfg := fastConfig()
	cfg.BatchSize = 2
	e.start(cfg, mb, rec, Metrics{}, nil)
	e.waitCheckpoint(mb.ID, ts.status(t, "INBOX").UIDValidity, 6)
	require.Equal(t, []uint32{1, 3, 5, 6}, rec.uids())
}

func flagSet(c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags("email.", fs)
	return fs
}
