package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

// DeadLetter is a record of the dead-letter topic, as an operator sees it.
type DeadLetter struct {
	// Offset is its offset in sb.dlq.v1.
	Offset int64
	// Topic, Partition and SourceOffset say where the message came from;
	// Topic is empty for a record that was never on a topic (a mail the
	// email connector could not parse is kept raw, for people).
	Topic        string
	Partition    int
	SourceOffset int64
	// Handler is the consumer group that gave up on it.
	Handler  string
	Reason   string
	Attempts int
	At       time.Time
	// Replayed says it was published again to Topic.
	Replayed bool
}

// ReplayFilter selects dead letters.
type ReplayFilter struct {
	// From and To bound the offsets in sb.dlq.v1, To excluded; To 0 means
	// the end of the topic when the replay starts.
	From, To int64
	// Topic and Handler, when set, must equal the record's.
	Topic, Handler string
	// ReasonContains, when set, must be part of the record's reason.
	ReasonContains string
	// DryRun lists what would be replayed and publishes nothing.
	DryRun bool
}

// ReplayDeadLetters publishes the dead letters f selects back to the topic
// they came from, with their key, value and original headers (the dlq_
// headers removed), so that their consumer handles them again once the
// cause is fixed. Consumers are idempotent by event id, so replaying a
// record twice, or one that was handled after all, changes nothing. Records
// without an origin topic are listed and left alone. seen is called for
// every record in range that f selects, in order.
func ReplayDeadLetters(ctx context.Context, cfg Config, f ReplayFilter, seen func(DeadLetter)) (replayed int, err error) {
	if len(cfg.Brokers) == 0 {
		return 0, errors.New("replay dead letters: no brokers")
	}
	dialer, err := cfg.Dialer()
	if err != nil {
		return 0, fmt.Errorf("replay dead letters: %w", err)
	}
	conn, err := dialer.DialLeader(ctx, "tcp", cfg.Brokers[0], events.TopicDLQ, 0)
	if err != nil {
		return 0, cfg.Explain(fmt.Errorf("replay dead letters: connect to %s: %w", events.TopicDLQ, err))
	}
	first, last, err := conn.ReadOffsets()
	conn.Close()
	if err != nil {
		return 0, fmt.Errorf("replay dead letters: offsets of %s: %w", events.TopicDLQ, err)
	}
	from, to := max(f.From, first), last
	if f.To > 0 {
		to = min(f.To, last)
	}
	if from >= to {
		return 0, nil
	}

	var producer *Producer
	if !f.DryRun {
		if producer, err = NewProducer(cfg, telemetry.Discard()); err != nil {
			return 0, fmt.Errorf("replay dead letters: %w", err)
		}
		defer producer.Close()
	}
	r, err := cfg.NewReader(kafka.ReaderConfig{Topic: events.TopicDLQ, Partition: 0, MaxWait: FetchMaxWait}, nil)
	if err != nil {
		return 0, fmt.Errorf("replay dead letters: %w", err)
	}
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return 0, fmt.Errorf("replay dead letters: seek to %d: %w", from, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return replayed, fmt.Errorf("replay dead letters: read offset %d on: %w", from, err)
		}
		if m.Offset >= to {
			return replayed, nil
		}
		d, original := describe(m)
		if !f.selects(d) {
			if m.Offset+1 >= to {
				return replayed, nil
			}
			continue
		}
		if d.Topic != "" && !f.DryRun {
			if err := producer.PublishRecords(ctx, kafka.Message{Topic: d.Topic, Key: m.Key, Value: m.Value, Headers: original}); err != nil {
				return replayed, fmt.Errorf("replay dead letter %d to %s: %w", m.Offset, d.Topic, err)
			}
			d.Replayed = true
			replayed++
		}
		if seen != nil {
			seen(d)
		}
		if m.Offset+1 >= to {
			return replayed, nil
		}
	}
}

func (f ReplayFilter) selects(d DeadLetter) bool {
	return (f.Topic == "" || f.Topic == d.Topic) &&
		(f.Handler == "" || f.Handler == d.Handler) &&
		(f.ReasonContains == "" || strings.Contains(d.Reason, f.ReasonContains))
}

// describe reads a dead letter's dlq_ headers and returns the others.
func describe(m kafka.Message) (DeadLetter, []kafka.Header) {
	d := DeadLetter{Offset: m.Offset}
	var original []kafka.Header
	for _, h := range m.Headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderDLQTopic:
			d.Topic = v
		case HeaderDLQPartition:
			d.Partition, _ = strconv.Atoi(v)
		case HeaderDLQOffset:
			d.SourceOffset, _ = strconv.ParseInt(v, 10, 64)
		case HeaderDLQHandler:
			d.Handler = v
		case HeaderDLQReason:
			d.Reason = v
		case HeaderDLQAttempts:
			d.Attempts, _ = strconv.Atoi(v)
		case HeaderDLQTime:
			d.At, _ = time.Parse(time.RFC3339Nano, v)
		default:
			if !strings.HasPrefix(h.Key, "dlq_") {
				original = append(original, h)
			}
		}
	}
	return d, original
}
