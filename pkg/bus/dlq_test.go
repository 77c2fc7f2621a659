package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func TestDeadLettersReplayToTheirTopicOnceFixed(t *testing.T) {
	e := setup(t)
	rec := newRecorder()
	var fixed atomic.Bool
	runConsumer(t, e, "g-replay", func(ctx context.Context, msgs []bus.Message) error {
		for _, m := range msgs {
			var p payload
			require.NoError(t, m.Event.Decode(&p))
			if p.N == 3 && !fixed.Load() {
				return bus.Permanent(errors.New("message 3 needs a fix"))
			}
		}
		for _, m := range msgs {
			require.NoError(t, rec.add(m))
		}
		return nil
	})
	e.publish(t, 0, 6)
	testkit.Eventually(t, 30*time.Second, func() bool { return rec.count() == 5 }, "handled %d of 5", rec.count())
	readDLQ(t, e, 1, 30*time.Second)
	// A dead letter that never was on a topic: a raw mail kept for people.
	require.NoError(t, e.producer.PublishRecords(context.Background(), kafka.Message{Topic: events.TopicDLQ, Key: []byte("email/m/1/7"), Value: []byte("raw mail"),
		Headers: []kafka.Header{{Key: bus.HeaderDLQReason, Value: []byte("unparseable: bad MIME")}, {Key: bus.HeaderDLQHandler, Value: []byte("email-imap")}}}))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var listed []bus.DeadLetter
	n, err := bus.ReplayDeadLetters(ctx, e.cfg, bus.ReplayFilter{DryRun: true}, func(d bus.DeadLetter) { listed = append(listed, d) })
	require.NoError(t, err)
	require.Zero(t, n, "a dry run publishes nothing")
	require.Len(t, listed, 2)
	require.Equal(t, topic, listed[0].Topic)
	require.Equal(t, "g-replay", listed[0].Handler)
	require.Contains(t, listed[0].Reason, "message 3 needs a fix")
	require.Empty(t, listed[1].Topic, "the raw mail has no topic to go back to")

	fixed.Store(true)
	listed = nil
	n, err = bus.ReplayDeadLetters(ctx, e.cfg, bus.ReplayFilter{Handler: "g-replay"}, func(d bus.DeadLetter) { listed = append(listed, d) })
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Len(t, listed, 1)
	require.True(t, listed[0].Replayed)
	testkit.Eventually(t, 30*time.Second, func() bool { return rec.count() == 6 }, "handled %d of 6 after the replay", rec.count())
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.Equal(t, 1, rec.seen[3], "the replayed message is handled once")
}
