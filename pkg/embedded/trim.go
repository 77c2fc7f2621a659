package embedded

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

// The embedded broker keeps its whole log in memory: without trimming it
// grows with every message (about 2.4 KB per chat message across the
// topics it passes through). Kafka's own retention (retention.ms,
// retention.bytes) deletes by age or size whether or not the consumers have
// read the records, which would lose a customer's acknowledged message if
// the inbox were stopped for long enough. The trimmer deletes only what
// every consumer group of a topic has committed, and keeps the last records
// of each partition beyond that for people inspecting the topics.

// TrimResult says what one trimming pass did.
type TrimResult struct {
	// Records is how many records were deleted, over all partitions.
	Records int64
	// Partitions is how many partitions were trimmed.
	Partitions int
}

// Trim deletes, in every topic of specs that is neither compacted nor the
// dead-letter topic, the records below the lowest offset committed by the
// consumer groups reading that topic, keeping at least keep records of each
// partition. A group reads a topic when it has committed in it or when a
// member of it is assigned some of its partitions; a partition that a
// group reads without having committed in it yet is not trimmed. A topic
// no group reads keeps its last keep records.
func (k *Kafka) Trim(ctx context.Context, specs []events.TopicSpec, keep int64) (TrimResult, error) {
	var res TrimResult
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...), kgo.RequestRetries(0))
	if err != nil {
		return res, fmt.Errorf("embedded Kafka trim: client: %w", err)
	}
	defer cl.Close()

	topics := make(map[string]int32)
	for _, s := range specs {
		if s.Compacted || s.Name == events.TopicDLQ {
			continue // a compacted topic is read from its start; dead letters wait for people
		}
		topics[s.Name] = int32(s.Partitions)
	}
	committed, err := groupCommits(ctx, cl)
	if err != nil {
		return res, err
	}
	starts, ends, err := logOffsets(ctx, cl, topics)
	if err != nil {
		return res, err
	}

	del := kmsg.NewPtrDeleteRecordsRequest()
	del.TimeoutMillis = 10_000
	for topic := range topics {
		dt := kmsg.NewDeleteRecordsRequestTopic()
		dt.Topic = topic
		for p, end := range ends[topic] {
			target := safeOffset(committed, topic, p, end)
			target = min(target, end-keep)
			if target <= starts[topic][p] {
				continue
			}
			dp := kmsg.NewDeleteRecordsRequestTopicPartition()
			dp.Partition, dp.Offset = p, target
			dt.Partitions = append(dt.Partitions, dp)
			res.Records += target - starts[topic][p]
			res.Partitions++
		}
		if len(dt.Partitions) > 0 {
			del.Topics = append(del.Topics, dt)
		}
	}
	if len(del.Topics) == 0 {
		return res, nil
	}
	resp, err := del.RequestWith(ctx, cl)
	if err != nil {
		return TrimResult{}, fmt.Errorf("embedded Kafka trim: delete records: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return TrimResult{}, fmt.Errorf("embedded Kafka trim: delete records of %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return res, nil
}

// commits maps group → topic → partition → committed offset. A topic a
// group reads has an entry, empty when the group has committed nothing in
// it yet.
type commits map[string]map[string]map[int32]int64

// safeOffset is the lowest offset of partition p of topic that every group
// reading topic has committed, end when no group reads it.
func safeOffset(c commits, topic string, p int32, end int64) int64 {
	safe := end
	for _, byTopic := range c {
		parts, reads := byTopic[topic]
		if !reads {
			continue
		}
		off, ok := parts[p]
		if !ok {
			return 0 // the group will start this partition from its beginning
		}
		safe = min(safe, off)
	}
	return safe
}

func groupCommits(ctx context.Context, cl *kgo.Client) (commits, error) {
	lg, err := kmsg.NewPtrListGroupsRequest().RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("embedded Kafka trim: list groups: %w", err)
	}
	if err := kerr.ErrorForCode(lg.ErrorCode); err != nil {
		return nil, fmt.Errorf("embedded Kafka trim: list groups: %w", err)
	}
	out := make(commits, len(lg.Groups))
	for _, g := range lg.Groups {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = g.Group // no topics: every committed offset of the group
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("embedded Kafka trim: offsets of group %s: %w", g.Group, err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, fmt.Errorf("embedded Kafka trim: offsets of group %s: %w", g.Group, err)
		}
		byTopic := make(map[string]map[int32]int64)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 || p.Offset < 0 {
					continue
				}
				if byTopic[t.Topic] == nil {
					byTopic[t.Topic] = make(map[int32]int64)
				}
				byTopic[t.Topic][p.Partition] = p.Offset
			}
		}
		out[g.Group] = byTopic
	}
	if err := assignedTopics(ctx, cl, out); err != nil {
		return nil, err
	}
	return out, nil
}

// assignedTopics gives every group in c an entry for each topic its members
// are assigned, so that a group that joined and has yet to commit holds
// back the trimming of what it is about to read.
func assignedTopics(ctx context.Context, cl *kgo.Client, c commits) error {
	if len(c) == 0 {
		return nil
	}
	req := kmsg.NewPtrDescribeGroupsRequest()
	for g := range c {
		req.Groups = append(req.Groups, g)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("embedded Kafka trim: describe groups: %w", err)
	}
	for _, g := range resp.Groups {
		if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
			return fmt.Errorf("embedded Kafka trim: describe group %s: %w", g.Group, err)
		}
		if g.ProtocolType != "consumer" {
			continue
		}
		for _, m := range g.Members {
			var a kmsg.ConsumerMemberAssignment
			if len(m.MemberAssignment) == 0 || a.ReadFrom(m.MemberAssignment) != nil {
				continue
			}
			for _, t := range a.Topics {
				if c[g.Group][t.Topic] == nil {
					c[g.Group][t.Topic] = make(map[int32]int64)
				}
			}
		}
	}
	return nil
}

// logOffsets returns the log start and end offsets of every partition of
// topics.
func logOffsets(ctx context.Context, cl *kgo.Client, topics map[string]int32) (starts, ends map[string]map[int32]int64, err error) {
	list := func(ts int64) (map[string]map[int32]int64, error) {
		req := kmsg.NewPtrListOffsetsRequest()
		req.ReplicaID = -1
		for topic, n := range topics {
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = topic
			for p := range n {
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = p, ts, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("embedded Kafka trim: list offsets: %w", err)
		}
		out := make(map[string]map[int32]int64, len(resp.Topics))
		for _, t := range resp.Topics {
			out[t.Topic] = make(map[int32]int64, len(t.Partitions))
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("embedded Kafka trim: offsets of %s/%d: %w", t.Topic, p.Partition, err)
				}
				out[t.Topic][p.Partition] = p.Offset
			}
		}
		return out, nil
	}
	if starts, err = list(-2); err != nil {
		return nil, nil, err
	}
	if ends, err = list(-1); err != nil {
		return nil, nil, err
	}
	return starts, ends, nil
}

// TrimLoop trims every interval until ctx ends, logging what it deleted
// and why it could not.
func (k *Kafka) TrimLoop(ctx context.Context, specs []events.TopicSpec, keep int64, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := k.Trim(ctx, specs, keep)
		switch {
		case err != nil && ctx.Err() == nil:
			k.log.Warn("embedded Kafka: trimming consumed records failed; will try again", "err", err)
		case res.Records > 0:
			k.log.Debug("embedded Kafka: consumed records trimmed", "records", res.Records, "partitions", res.Partitions)
		}
	}
}

// setSegmentBytes gives topics made by an earlier version, with the
// broker's default segments of 100 MiB, the segment size of new ones.
func (k *Kafka) setSegmentBytes(topics []string) error {
	if len(topics) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers()...))
	if err != nil {
		return fmt.Errorf("embedded Kafka: client: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	size := strconv.Itoa(SegmentBytes)
	for _, t := range topics {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType, r.ResourceName = kmsg.ConfigResourceTypeTopic, t
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = "segment.bytes", kmsg.IncrementalAlterConfigOpSet, &size
		r.Configs = append(r.Configs, c)
		req.Resources = append(req.Resources, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("embedded Kafka: set segment.bytes: %w", err)
	}
	for _, r := range resp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("embedded Kafka: set segment.bytes of %s: %w", r.ResourceName, err)
		}
	}
	return nil
}
