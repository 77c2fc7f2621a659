package email

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/seal"
)

// mailboxes is the connector's view of the mailboxes configured on
// sb.config.v1, and the supervisor of one synchronisation per mailbox: a
// new mailbox starts syncing, a changed one restarts with its new settings,
// a deleted one stops, all without restarting the process.
type mailboxes struct {
	log *slog.Logger
	// keys open the mailboxes' secrets, which travel sealed.
	keys *seal.Keyring
	// sync runs the synchronisation of one mailbox until ctx is done.
	sync func(ctx context.Context, mb events.Mailbox) error

	mu      sync.Mutex
	byID    map[string]events.Mailbox
	running map[string]*syncRun
	// ctx is the connector's run context, nil until run starts: mailboxes
	// learned before that start when it does.
	ctx context.Context
	wg  sync.WaitGroup
}

type syncRun struct {
	mb     events.Mailbox
	cancel context.CancelFunc
	done   chan struct{}
}

func newMailboxes(log *slog.Logger, keys *seal.Keyring, sync func(ctx context.Context, mb events.Mailbox) error) *mailboxes {
	return &mailboxes{log: log, keys: keys, sync: sync, byID: map[string]events.Mailbox{}, running: map[string]*syncRun{}}
}

// apply takes one mailbox event from the config topic, and opens its
// secrets. One that does not open (a key missing from the keyring)
// leaves the mailbox as it was known: the error names the key.
func (m *mailboxes) apply(_ context.Context, ev events.Event) error {
	if ev.Type != events.TypeMailbox {
		return nil // other connectors' configuration
	}
	var mb events.Mailbox
	if err := ev.Decode(&mb); err != nil {
		return err
	}
	if mb.ID == "" || mb.TenantID == "" {
		return fmt.Errorf("mailbox event %s lacks id or tenant", ev.ID)
	}
	plain, err := m.keys.OpenFields(mb.SecretPlace(), mb.SecretFields())
	if err != nil {
		return fmt.Errorf("mailbox event %s: %w", ev.ID, err)
	}
	if plain > 0 {
		m.log.Warn("mailbox secrets arrived in clear, from an inbox that did not seal them; the inbox seals them at its next start", "mailbox_id", mb.ID)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if mb.Deleted {
		delete(m.byID, mb.ID)
	} else {
		m.byID[mb.ID] = mb
	}
	if m.ctx != nil {
		m.reconcile(mb.ID)
	}
	return nil
}

// get returns a mailbox's current settings.
func (m *mailboxes) get(id string) (events.Mailbox, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mb, ok := m.byID[id]
	return mb, ok
}

// run starts the synchronisation of every known mailbox and of those
// learned later, until ctx is done; then it stops them all and waits.
func (m *mailboxes) run(ctx context.Context) error {
	m.mu.Lock()
	m.ctx = ctx
	for id := range m.byID {
		m.reconcile(id)
	}
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	for id, r := range m.running {
		r.cancel()
		delete(m.running, id)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// reconcile makes what runs for one mailbox match its settings. It is
// called with m.mu held, and releases it while an old run stops, so that
// the run can still read the view meanwhile.
func (m *mailboxes) reconcile(id string) {
	var (
		mb   events.Mailbox
		want bool
	)
	for {
		mb, want = m.byID[id]
		r, running := m.running[id]
		if running && want && reflect.DeepEqual(r.mb, mb) {
			return
		}
		if !running {
			break
		}
		// Stop the old run before a new one starts: two sessions of one
		// mailbox would race on its checkpoint.
		r.cancel()
		delete(m.running, id)
		m.mu.Unlock()
		<-r.done
		m.mu.Lock()
		reason := "mailbox deleted"
		if want {
			reason = "settings changed"
		}
		m.log.Info("mailbox sync stopped", "mailbox_id", id, "reason", reason)
	}
	if !want || m.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	nr := &syncRun{mb: mb, cancel: cancel, done: make(chan struct{})}
	m.running[id] = nr
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(nr.done)
		m.log.Info("mailbox sync started", "mailbox_id", mb.ID, "tenant_id", mb.TenantID, "imap_host", mb.IMAP.Host, "folder", mb.Folder)
		if err := m.sync(ctx, mb); err != nil && !errors.Is(err, context.Canceled) {
			m.log.Error("mailbox sync ended", "mailbox_id", mb.ID, "error", err)
		}
	}()
}
