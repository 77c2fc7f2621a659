package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/retry"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// Table reads a whole topic, every partition from its first offset, without
// a consumer group, and keeps following it: the way services build their
// view of the compacted sb.config.v1. It is ready once it has read up to
// the end offsets it found at start.
type Table struct {
	cfg   Config
	topic string
	apply func(ctx context.Context, ev events.Event) error
	log   *slog.Logger
	ready atomic.Bool
}

// NewTable builds a table reader of the brokers of cfg; apply is called for
// every event in order per partition. An apply error is logged and the
// event skipped: a bad entry must not stop a service from seeing the good
// ones.
func NewTable(cfg Config, topic string, apply func(ctx context.Context, ev events.Event) error, tel *telemetry.Telemetry) *Table {
	return &Table{cfg: cfg, topic: topic, apply: apply, log: tel.Component("bus").With("table", topic)}
}

// Ready reports whether the table caught up with the topic as it was at
// start.
func (t *Table) Ready(context.Context) error {
	if !t.ready.Load() {
		return fmt.Errorf("still reading %s", t.topic)
	}
	return nil
}

// Run reads until ctx is cancelled. Until Kafka answers, it retries (and
// stays not ready) rather than failing the process.
func (t *Table) Run(ctx context.Context) error {
	var ends map[int]int64
	policy := retry.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}
	for n := 1; ; n++ {
		var err error
		if ends, err = t.endOffsets(ctx); err == nil {
			break
		}
		t.log.Warn("cannot read the topic's end offsets yet; retrying", "attempt", n, "error", t.cfg.Explain(err))
		if policy.Sleep(ctx, retry.SystemClock{}, n) != nil {
			return nil
		}
	}
	var pending atomic.Int64
	for _, end := range ends {
		if end > 0 {
			pending.Add(1)
		}
	}
	if pending.Load() == 0 {
		t.markReady()
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(ends))
	for p, end := range ends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.follow(ctx, p, end, &pending); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc // nil when closed empty
}

func (t *Table) markReady() {
	if !t.ready.Swap(true) {
		t.log.Info("caught up")
	}
}

func (t *Table) follow(ctx context.Context, partition int, end int64, pending *atomic.Int64) error {
	r, err := t.cfg.NewReader(kafka.ReaderConfig{
		Topic:       t.topic,
		Partition:   partition,
		StartOffset: kafka.FirstOffset,
		MinBytes:    1,
		MaxBytes:    16 << 20,
		MaxWait:     FetchMaxWait,
	}, t.log)
	if err != nil {
		return fmt.Errorf("read %s[%d]: %w", t.topic, partition, err)
	}
	defer r.Close()
	caught := end == 0
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read %s[%d]: %w", t.topic, partition, err)
		}
		if len(m.Value) > 0 {
			ev, mctx, err := events.FromMessage(ctx, m)
			if err != nil {
				t.log.Error("skipping an undecodable entry", "partition", partition, "offset", m.Offset, "error", err)
			} else if err := t.apply(mctx, ev); err != nil {
				t.log.Error("skipping an entry that could not be applied", "partition", partition, "offset", m.Offset, "type", ev.Type, "error", err)
			}
		}
		if !caught && m.Offset >= end-1 {
			caught = true
			if pending.Add(-1) == 0 {
				t.markReady()
			}
		}
	}
}

// endOffsets returns the end offset of every partition of the topic.
func (t *Table) endOffsets(ctx context.Context) (map[int]int64, error) {
	client, done, err := t.cfg.Client(10 * time.Second)
	if err != nil {
		return nil, err
	}
	defer done()
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{t.topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", t.topic, err)
	}
	var reqs []kafka.OffsetRequest
	for _, tp := range meta.Topics {
		if tp.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", t.topic, tp.Error)
		}
		for _, p := range tp.Partitions {
			reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions; create it first", t.topic)
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{t.topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", t.topic, err)
	}
	ends := map[int]int64{}
	for _, po := range resp.Topics[t.topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("end offset of %s[%d]: %w", t.topic, po.Partition, po.Error)
		}
		if po.LastOffset > po.FirstOffset {
			ends[po.Partition] = po.LastOffset
		} else {
			ends[po.Partition] = 0 // empty, or emptied by retention
		}
	}
	return ends, nil
}
