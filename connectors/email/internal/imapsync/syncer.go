package imapsync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// persistTimeout bounds a checkpoint write made after the syncer was told to
// stop: a message Deliver accepted is still recorded, so that it is not
// offered again after the restart.
const persistTimeout = 5 * time.Second

// maxBackoffStep caps the attempt number passed to the retry policy; the
// policy's delay stops growing long before.
const maxBackoffStep = 32

// Syncer synchronises one folder of one mailbox. Build it with New and call
// Run once.
type Syncer struct {
	cfg      Config
	mb       events.Mailbox
	folder   string
	source   string // Source(mb.IMAP, folder), the checkpoint's
	readOnly bool
	deliver  Deliver
	// batch, when set, takes each fetched part at once (see NewBatched).
	batch   DeliverBatch
	cp      *Checkpoints
	log     *slog.Logger
	metrics Metrics

	// onIdle, when set, is called each time an IDLE command has started.
	// Tests use it to append mail while the syncer waits.
	onIdle func()
}

// New returns the syncer of mb's IMAP folder (Folder, INBOX when empty),
// delivering to deliver and checkpointing in cp. Zero fields of cfg take
// their defaults. log may be nil (logs are discarded). It fails when the
// mailbox's IMAP settings are unusable.
func New(cfg Config, mb events.Mailbox, deliver Deliver, cp *Checkpoints, log *slog.Logger, metrics Metrics) (*Syncer, error) {
	if err := checkMailbox(mb); err != nil {
		return nil, err
	}
	if deliver == nil || cp == nil {
		return nil, errors.New("imapsync: New needs a Deliver and Checkpoints")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	folder := mb.Folder
	if folder == "" {
		folder = "INBOX"
	}
	return &Syncer{
		cfg:    cfg.withDefaults(),
		mb:     mb,
		folder: folder,
		source: Source(mb.IMAP, folder),
		// EXAMINE (RFC 9051 6.3.3) guarantees the sync changes nothing on
		// the server, not even \Recent, unless asked to mark or move.
		readOnly: !mb.MarkSeen && mb.MoveTo == "",
		deliver:  deliver,
		cp:       cp,
		// Only non-secret settings go into the logger's attributes.
		log: log.With("component", "imapsync", "tenant", mb.TenantID, "mailbox", mb.ID,
			"imap_host", mb.IMAP.Host, "imap_user", mb.IMAP.Username, "folder", folder),
		metrics: metrics,
	}, nil
}

// NewBatched is New with a deliverer that takes the messages of each
// fetched part at once, in UID order: a backfill then waits for one
// acknowledgement per part instead of one per message. The checkpoint
// advances past a part once deliver returned nil for it; a failure
// retries the whole part, so deliver must be idempotent.
func NewBatched(cfg Config, mb events.Mailbox, deliver DeliverBatch, cp *Checkpoints, log *slog.Logger, metrics Metrics) (*Syncer, error) {
	if deliver == nil {
		return nil, errors.New("imapsync: no deliverer")
	}
	s, err := New(cfg, mb, func(ctx context.Context, raw Raw) error { return deliver(ctx, []Raw{raw}) }, cp, log, metrics)
	if err != nil {
		return nil, err
	}
	s.batch = deliver
	return s, nil
}

func checkMailbox(mb events.Mailbox) error {
	s := mb.IMAP
	switch {
	case mb.ID == "":
		return errors.New("imapsync: mailbox has no id")
	case s.Host == "":
		return fmt.Errorf("imapsync: mailbox %s has no IMAP host", mb.ID)
	case s.Port <= 0 || s.Port > 65535:
		return fmt.Errorf("imapsync: mailbox %s has IMAP port %d", mb.ID, s.Port)
	case s.TLS != "" && s.TLS != events.TLSNone && s.TLS != events.TLSStartTLS && s.TLS != events.TLSImplicit:
		return fmt.Errorf("imapsync: mailbox %s has IMAP TLS mode %q; want none, starttls or tls", mb.ID, s.TLS)
	case s.Username == "":
		return fmt.Errorf("imapsync: mailbox %s has no IMAP username", mb.ID)
	case s.Password == "" && s.OAuth2Token == "":
		return fmt.Errorf("imapsync: mailbox %s has neither an IMAP password nor an OAuth2 token", mb.ID)
	case mb.MoveTo != "" && mb.MoveTo == folderOrInbox(mb.Folder):
		return fmt.Errorf("imapsync: mailbox %s moves mail to the folder it reads (%q)", mb.ID, mb.MoveTo)
	}
	return nil
}

func folderOrInbox(f string) string {
	if f == "" {
		return "INBOX"
	}
	return f
}

// Run synchronises until ctx is done, then returns nil. Every failure
// (connection, server, Deliver, PostgreSQL) is logged and retried with the
// backoff of Config.Retry; the backoff starts over once a session has
// caught up with the folder.
func (s *Syncer) Run(ctx context.Context) error {
	s.log.Info("imap sync starting", "tls", s.mb.IMAP.TLS, "read_only", s.readOnly, "mark_seen", s.mb.MarkSeen, "move_to", s.mb.MoveTo)
	failures := 0
	for {
		caughtUp := false
		err := s.session(ctx, func() { caughtUp = true })
		if ctx.Err() != nil {
			s.log.Info("imap sync stopped")
			return nil
		}
		if caughtUp {
			failures = 0
		}
		failures++
		count(s.metrics.Reconnects, 1)
		delay := s.cfg.Retry.Delay(min(failures, maxBackoffStep))
		s.log.Warn("imap session failed; reconnecting", "err", err, "attempt", failures, "retry_in", delay)
		select {
		case <-ctx.Done():
			s.log.Info("imap sync stopped")
			return nil
		case <-s.cfg.Clock.After(delay):
		}
	}
}

// session runs one connection: select, catch up, wait for mail, catch up
// again, until an error or ctx ends it. caughtUp is called after every
// complete catch-up.
func (s *Syncer) session(ctx context.Context, caughtUp func()) error {
	// One pending signal is enough: a wake-up means "look again", and the
	// look covers everything that arrived before it.
	wake := make(chan struct{}, 1)
	handler := &imapclient.UnilateralDataHandler{
		Mailbox: func(data *imapclient.UnilateralDataMailbox) {
			if data.NumMessages != nil {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		},
	}
	c, err := dial(ctx, s.mb.IMAP, s.cfg.DialTimeout, handler)
	if err != nil {
		return err
	}
	defer c.Close()
	// imapclient's commands take no context: closing the connection is
	// what interrupts a command in flight when ctx ends.
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()

	sel, err := c.Select(s.folder, &imap.SelectOptions{ReadOnly: s.readOnly}).Wait()
	if err != nil {
		return fmt.Errorf("select folder %q: %w", s.folder, err)
	}
	validity := sel.UIDValidity
	if validity == 0 {
		return fmt.Errorf("select folder %q: the server sent no UIDVALIDITY", s.folder)
	}
	last, err := s.start(ctx, validity)
	if err != nil {
		return err
	}
	idle := !s.cfg.ForcePoll && c.Caps().Has(imap.CapIdle)
	s.log.Debug("imap folder selected", "uid_validity", validity, "last_uid", last, "messages", sel.NumMessages, "idle", idle)

	for {
		select { // this pass sees everything signalled so far
		case <-wake:
		default:
		}
		if last, err = s.catchUp(ctx, c, validity, last); err != nil {
			return err
		}
		caughtUp()
		if idle {
			err = s.waitIdle(ctx, c, wake)
		} else {
			err = s.waitPoll(ctx, c)
		}
		if err != nil {
			return err
		}
	}
}

// start reads the checkpoint and returns the last UID delivered under
// validity. When the folder's UIDVALIDITY differs from the checkpoint's
// (RFC 9051 2.3.1.1: its UIDs were reassigned), or the checkpoint is of
// another folder or account (the mailbox's settings changed: its UIDs say
// nothing of this folder's, whatever the UIDVALIDITYs), every message is
// offered again from UID 1 and the checkpoint restarts under the new
// UIDVALIDITY and source.
func (s *Syncer) start(ctx context.Context, validity uint32) (uint32, error) {
	cp, ok, err := s.cp.Get(ctx, s.mb.ID)
	if err != nil {
		return 0, err
	}
	switch {
	case ok && cp.UIDValidity == validity && cp.Source == s.source:
		return cp.LastUID, nil
	case ok && cp.UIDValidity == validity && cp.Source == "":
		// Written before sources were kept: adopt it, position and all.
		if err := s.cp.Reset(ctx, s.mb.ID, validity, s.source); err != nil {
			return 0, err
		}
		return cp.LastUID, nil
	case ok && cp.Source != s.source:
		s.log.Warn("imap folder or account changed; offering every message of the new folder",
			"old_source", cp.Source, "old_uid_validity", cp.UIDValidity, "uid_validity", validity, "old_last_uid", cp.LastUID)
	case ok:
		count(s.metrics.UIDValidityChanges, 1)
		s.log.Warn("imap UIDVALIDITY changed; offering every message of the folder again",
			"old_uid_validity", cp.UIDValidity, "new_uid_validity", validity, "old_last_uid", cp.LastUID)
	default:
		s.log.Info("imap folder seen for the first time; backfilling every message", "uid_validity", validity)
	}
	// Resetting first rather than after the resync loses nothing: a crash
	// midway resumes the resync where it stopped instead of from UID 1.
	if err := s.cp.Reset(ctx, s.mb.ID, validity, s.source); err != nil {
		return 0, err
	}
	return 0, nil
}

// catchUp delivers every message above last, in UID order, until a search
// finds none, and returns the new last UID.
func (s *Syncer) catchUp(ctx context.Context, c *imapclient.Client, validity, last uint32) (uint32, error) {
	for {
		uids, err := s.uidsAfter(c, last)
		if err != nil {
			return last, err
		}
		if len(uids) == 0 {
			count(s.metrics.Lag, 0)
			return last, nil
		}
		total, done := len(uids), 0
		count(s.metrics.Lag, total)
		for len(uids) > 0 {
			batch := uids[:min(len(uids), s.cfg.BatchSize)]
			uids = uids[len(batch):]
			if last, err = s.syncBatch(ctx, c, validity, last, batch); err != nil {
				return last, err
			}
			done += len(batch)
			count(s.metrics.Lag, total-done)
			level := slog.LevelDebug
			if total > s.cfg.BatchSize {
				level = slog.LevelInfo // a backfill: show progress
			}
			s.log.Log(ctx, level, "imap batch delivered", "done", done, "total", total, "last_uid", last)
		}
	}
}

// uidsAfter returns the folder's UIDs above last, ascending.
func (s *Syncer) uidsAfter(c *imapclient.Client, last uint32) ([]imap.UID, error) {
	if last == math.MaxUint32 {
		return nil, nil
	}
	// An explicit upper bound instead of "*": "n:*" matches the highest UID
	// even when it is below n (RFC 9051 6.4.9), which the filter below
	// would then have to drop.
	var set imap.UIDSet
	set.AddRange(imap.UID(last+1), imap.UID(math.MaxUint32))
	data, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{set}}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("search UIDs after %d: %w", last, err)
	}
	found, ok := data.All.(imap.UIDSet)
	if !ok && data.All != nil {
		return nil, fmt.Errorf("search UIDs after %d: the server answered with sequence numbers", last)
	}
	nums, ok := found.Nums()
	if !ok {
		return nil, fmt.Errorf("search UIDs after %d: the server answered with a dynamic set", last)
	}
	nums = slices.DeleteFunc(nums, func(u imap.UID) bool { return uint32(u) <= last })
	slices.Sort(nums)
	return slices.Compact(nums), nil
}

// meta is what a first, cheap FETCH says of a message.
type meta struct {
	uid  imap.UID
	size int64
	date time.Time
}

// syncBatch delivers the messages of batch (ascending UIDs above last). It
// first fetches their sizes, so that too large messages are never
// downloaded, then their bodies in parts of about Config.BatchBytes.
func (s *Syncer) syncBatch(ctx context.Context, c *imapclient.Client, validity, last uint32, batch []imap.UID) (uint32, error) {
	msgs, err := c.Fetch(imap.UIDSetNum(batch...), &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true}).Collect()
	if err != nil {
		return last, fmt.Errorf("fetch sizes of UIDs %d to %d: %w", batch[0], batch[len(batch)-1], err)
	}
	metas := make([]meta, 0, len(msgs))
	got := make(map[imap.UID]bool, len(msgs))
	for _, m := range msgs {
		if m.UID != 0 && uint32(m.UID) > last && !got[m.UID] {
			got[m.UID] = true
			metas = append(metas, meta{uid: m.UID, size: m.RFC822Size, date: m.InternalDate})
		}
	}
	// A message expunged since the search is simply absent.
	if err := s.checkGone(c, slices.DeleteFunc(slices.Clone(batch), func(u imap.UID) bool { return got[u] })); err != nil {
		return last, err
	}
	// Servers answer in sequence order, which is UID order (RFC 9051
	// 2.3.1.1); sorting makes it so whatever the server does.
	slices.SortFunc(metas, func(a, b meta) int { return cmp.Compare(a.uid, b.uid) })

	for len(metas) > 0 {
		n, bytes := 0, int64(0)
		for n < len(metas) && (n == 0 || bytes < s.cfg.BatchBytes) {
			if metas[n].size <= s.cfg.MaxMessageBytes {
				bytes += metas[n].size
			}
			n++
		}
		if last, err = s.syncPart(ctx, c, validity, last, metas[:n]); err != nil {
			return last, err
		}
		metas = metas[n:]
	}
	return last, nil
}

// syncPart fetches the bodies of part, delivers every message in UID order,
// checkpoints each, then applies the mailbox's actions to those delivered.
func (s *Syncer) syncPart(ctx context.Context, c *imapclient.Client, validity, last uint32, part []meta) (uint32, error) {
	var wanted []imap.UID
	for _, m := range part {
		if m.size <= s.cfg.MaxMessageBytes {
			wanted = append(wanted, m.uid)
		}
	}
	section := &imap.FetchItemBodySection{Peek: true} // BODY.PEEK[]: leaves \Seen alone
	bodies := make(map[imap.UID][]byte, len(wanted))
	if len(wanted) > 0 {
		// The whole part is read before anything is delivered: a slow or
		// failing Deliver then never stalls the server's FETCH response.
		msgs, err := c.Fetch(imap.UIDSetNum(wanted...), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
		if err != nil {
			return last, fmt.Errorf("fetch UIDs %d to %d: %w", wanted[0], wanted[len(wanted)-1], err)
		}
		for _, m := range msgs {
			if b := m.FindBodySection(section); b != nil && m.UID != 0 {
				bodies[m.UID] = b
			}
		}
		count(s.metrics.Fetched, len(bodies))
		var missing []imap.UID
		for _, u := range wanted {
			if _, ok := bodies[u]; !ok {
				missing = append(missing, u)
			}
		}
		if err := s.checkGone(c, missing); err != nil {
			return last, err
		}
	}

	var done imap.UIDSet
	defer func() { s.applyActions(ctx, c, done) }()
	var raws []Raw
	for _, m := range part {
		raw := Raw{MailboxID: s.mb.ID, UIDValidity: validity, UID: uint32(m.uid), InternalDate: m.date, Size: m.size}
		if body, ok := bodies[m.uid]; ok && int64(len(body)) <= s.cfg.MaxMessageBytes {
			raw.Body = body
		} else if ok || m.size > s.cfg.MaxMessageBytes {
			raw.TooLarge = true
			count(s.metrics.TooLarge, 1)
			s.log.Warn("imap message too large; delivering it as too large, without its body", "uid", m.uid, "size", m.size, "max", s.cfg.MaxMessageBytes)
		} else {
			continue // expunged, see checkGone
		}
		if s.batch != nil {
			raws = append(raws, raw)
			continue
		}
		if err := s.deliverOne(ctx, raw); err != nil {
			return last, err
		}
		if err := s.advance(ctx, validity, raw.UID); err != nil {
			return last, err
		}
		last = raw.UID
		done.AddNum(m.uid)
		count(s.metrics.Delivered, 1)
	}
	if len(raws) == 0 {
		return last, nil
	}
	first, end := raws[0].UID, raws[len(raws)-1].UID
	if err := s.retryDeliver(ctx, fmt.Sprintf("UIDs %d to %d", first, end), func() error { return s.batch(ctx, raws) }); err != nil {
		return last, err
	}
	if err := s.advance(ctx, validity, end); err != nil {
		return last, err
	}
	for _, r := range raws {
		done.AddNum(imap.UID(r.UID))
	}
	count(s.metrics.Delivered, len(raws))
	return end, nil
}

// checkGone returns nil when none of uids is in the folder any more (they
// were expunged since they were found), and an error otherwise: a message
// the server failed to return is retried, never skipped.
func (s *Syncer) checkGone(c *imapclient.Client, uids []imap.UID) error {
	if len(uids) == 0 {
		return nil
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{UID: []imap.UIDSet{imap.UIDSetNum(uids...)}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("search UIDs missing from FETCH: %w", err)
	}
	if found, ok := data.All.(imap.UIDSet); ok && len(found) > 0 {
		return fmt.Errorf("FETCH returned nothing for UIDs %s, which are still in the folder", found)
	}
	s.log.Debug("imap messages expunged before they were fetched", "uids", imap.UIDSetNum(uids...).String())
	return nil
}

// deliverOne calls Deliver until it succeeds or ctx ends: a message is
// never skipped, and nothing after it is delivered before it.
func (s *Syncer) deliverOne(ctx context.Context, raw Raw) error {
	return s.retryDeliver(ctx, fmt.Sprintf("UID %d", raw.UID), func() error { return s.deliver(ctx, raw) })
}

// retryDeliver calls deliver until it succeeds or ctx ends.
func (s *Syncer) retryDeliver(ctx context.Context, what string, deliver func() error) error {
	for attempt := 1; ; attempt++ {
		err := deliver()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("deliver %s: %w", what, ctx.Err())
		}
		count(s.metrics.DeliverErrors, 1)
		delay := s.cfg.Retry.Delay(min(attempt, maxBackoffStep))
		s.log.Warn("imap deliver failed; retrying the same messages", "messages", what, "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("deliver %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-s.cfg.Clock.After(delay):
		}
	}
}

// advance records uid as delivered, retrying a failing write. The write
// outlives ctx by up to persistTimeout: Deliver has accepted the message,
// and recording it spares a duplicate after the restart.
func (s *Syncer) advance(ctx context.Context, validity, uid uint32) error {
	for attempt := 1; ; attempt++ {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), persistTimeout)
		err := s.cp.Advance(wctx, s.mb.ID, validity, uid)
		cancel()
		if err == nil || errors.Is(err, ErrUIDValidityChanged) || ctx.Err() != nil {
			return err
		}
		delay := s.cfg.Retry.Delay(min(attempt, maxBackoffStep))
		s.log.Warn("imap checkpoint write failed; retrying", "uid", uid, "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-s.cfg.Clock.After(delay):
		}
	}
}

// applyActions marks and moves the delivered messages, as the mailbox asks.
// They are checkpointed already: a failure is logged and not retried, as
// the sync must not stall on a side effect.
func (s *Syncer) applyActions(ctx context.Context, c *imapclient.Client, uids imap.UIDSet) {
	if len(uids) == 0 || s.readOnly {
		return
	}
	if ctx.Err() != nil {
		s.log.Warn("imap sync stopping; delivered messages left unmarked and unmoved", "uids", uids.String())
		return
	}
	if s.mb.MarkSeen {
		store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}
		if err := c.Store(uids, store, nil).Close(); err != nil {
			s.log.Warn("imap mark as seen failed", "uids", uids.String(), "err", err)
		}
	}
	if s.mb.MoveTo != "" {
		// imapclient falls back to COPY, STORE \Deleted and EXPUNGE (UID
		// EXPUNGE with UIDPLUS) when the server has no MOVE (RFC 6851).
		if _, err := c.Move(uids, s.mb.MoveTo).Wait(); err != nil {
			s.log.Warn("imap move failed", "uids", uids.String(), "to", s.mb.MoveTo, "err", err)
		}
	}
}

// waitIdle issues IDLE and returns when the server reports new mail, after
// Config.IdleRefresh, or when ctx ends.
func (s *Syncer) waitIdle(ctx context.Context, c *imapclient.Client, wake <-chan struct{}) error {
	cmd, err := c.Idle()
	if err != nil {
		return fmt.Errorf("start IDLE: %w", err)
	}
	if s.onIdle != nil {
		s.onIdle()
	}
	var lost error
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-s.cfg.Clock.After(s.cfg.IdleRefresh):
	case <-c.Closed():
		lost = errors.New("connection closed during IDLE")
	}
	if err := cmd.Close(); err != nil && lost == nil {
		return fmt.Errorf("stop IDLE: %w", err)
	}
	if err := cmd.Wait(); err != nil && lost == nil {
		return fmt.Errorf("IDLE: %w", err)
	}
	return lost
}

// waitPoll waits Config.PollInterval, then sends NOOP so that the server
// reports new mail (RFC 9051 6.1.2) before the next search.
func (s *Syncer) waitPoll(ctx context.Context, c *imapclient.Client) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.Closed():
		return errors.New("connection closed while waiting to poll")
	case <-s.cfg.Clock.After(s.cfg.PollInterval):
	}
	if err := c.Noop().Wait(); err != nil {
		return fmt.Errorf("NOOP: %w", err)
	}
	return nil
}
