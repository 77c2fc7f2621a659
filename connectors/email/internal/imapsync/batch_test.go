package imapsync

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// batches records what a batched deliverer is handed.
type batches struct {
	mu    sync.Mutex
	sizes []int
	rec   *recorder
	fails int // the first fails calls fail
}

func (b *batches) deliver(ctx context.Context, raws []Raw) error {
	b.mu.Lock()
	if b.fails > 0 {
		b.fails--
		b.mu.Unlock()
		return errors.New("kafka unavailable")
	}
	b.sizes = append(b.sizes, len(raws))
	b.mu.Unlock()
	for _, r := range raws {
		if err := b.rec.deliver(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func TestBatchedBackfillDeliversPartsInOrder(t *testing.T) {
	e := newEnv(t)
	ts := newServer(t, serverOptions{})
	bodies := ts.add(t, "INBOX", 10)
	mb := ts.mailbox()
	b := &batches{rec: newRecorder(), fails: 2}
	cfg := fastConfig()
	cfg.BatchSize = 4
	s, err := NewBatched(cfg, mb, b.deliver, e.cp, slog.New(slog.NewTextHandler(e.logs, nil)), Metrics{})
	require.NoError(t, err)
	testkit.Run(t, s)

	validity := ts.status(t, "INBOX").UIDValidity
	e.waitCheckpoint(mb.ID, validity, 10)
	require.Equal(t, seq(1, 10), b.rec.uids(), "every message once, in order, after the failed attempts")
	for i, raw := range b.rec.raws() {
		require.Equal(t, bodies[i], raw.Body)
	}
	b.mu.Lock()
	require.Equal(t, []int{4, 4, 2}, b.sizes, "one call per fetched part")
	b.mu.Unlock()
	require.Contains(t, e.logs.String(), "kafka unavailable")

	// New mail arrives one part at a time too.
	ts.add(t, "INBOX", 1)
	e.waitCheckpoint(mb.ID, validity, 11)
	require.Equal(t, seq(1, 11), b.rec.uids())

	_, err = NewBatched(cfg, mb, nil, e.cp, slog.New(slog.DiscardHandler), Metrics{})
	require.Error(t, err)
}
