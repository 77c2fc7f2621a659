package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// RoutingResult is one run of the routing scenario.
type RoutingResult struct {
	PgbenchInsertTPS float64 `json:"pgbench_insert_tps"`
	RedisSetOPS      float64 `json:"redis_set_ops"`

	// The set-up: Agents created through the admin API (capacity
	// Capacity, members of the one push queue), their sessions minted in
	// SQL, each set online through PUT /v1/me/presence; ReadySeconds runs
	// from then until the router holds every one of them available.
	Agents          int     `json:"agents"`
	Capacity        int     `json:"agent_capacity"`
	AgentsSeconds   float64 `json:"agents_created_seconds"`
	PresenceSeconds float64 `json:"agents_online_seconds"`
	ReadySeconds    float64 `json:"router_ready_seconds"`

	// Paced: conversations arriving at a rate the router keeps up with,
	// for the latency. Backlog: conversations sent as fast as the
	// webhooks are answered, queueing ahead of the router, for the
	// decisions per second.
	Paced   RoutingPhase `json:"paced"`
	Backlog RoutingPhase `json:"backlog"`

	// Of the agents' streams: reconnections after the hub dropped a
	// stream that fell behind (it resumes where it was), and resets
	// (events lost beyond the hub's history: the figures miss them).
	Reconnects int `json:"stream_reconnects"`
	Resets     int `json:"stream_resets"`
}

// RoutingPhase is one phase of a run. Durations are in milliseconds
// unless their name says seconds.
type RoutingPhase struct {
	// Conversations chat webhooks, one new conversation each, Rate per
	// second (0: as fast as answered at -c).
	Conversations int     `json:"conversations"`
	Rate          int     `json:"rate"`
	SendSeconds   float64 `json:"send_seconds"`
	SentPerSecond float64 `json:"sent_per_second"`
	Refused       int     `json:"webhooks_refused"`

	// Created and Offered count the conversations whose created and
	// first offer events the streams delivered; Missing those created but
	// never offered within the wait; Duplicates offer events for an
	// already offered conversation (nobody rejects, nothing lapses: there
	// should be none).
	Created    int `json:"created_seen"`
	Offered    int `json:"offered_seen"`
	Missing    int `json:"never_offered"`
	Duplicates int `json:"offers_repeated"`
	// OffersSent counts the offer commands the router sent
	// (switchboard_router_offers_total), OffersStale those the inbox
	// refused as stale: more than one per conversation means decisions
	// taken back (unconfirmed within -router.decision-grace) and made
	// again.
	OffersSent  int `json:"router_offers_sent"`
	OffersStale int `json:"inbox_offers_stale"`

	// StreamP50... run from the created event's time (ce_time, the
	// inbox's clock) to the offer event's arrival on an agent's stream
	// (the bench's clock; same machine), one sample per stream and
	// conversation. EventP50... stop at the offer event's own time (the
	// inbox applying the offer command): the rest is the stream's
	// delivery.
	StreamP50 float64 `json:"created_to_offer_on_stream_p50_ms"`
	StreamP99 float64 `json:"created_to_offer_on_stream_p99_ms"`
	StreamMax float64 `json:"created_to_offer_on_stream_max_ms"`
	EventP50  float64 `json:"created_to_offer_applied_p50_ms"`
	EventP99  float64 `json:"created_to_offer_applied_p99_ms"`
	// RouterMean and RouterP99 are the router's share, from its histogram
	// switchboard_router_offer_latency_seconds (the event that let the
	// conversation go to its offer command sent): the mean, and the upper
	// bound of the bucket holding the 99th percentile.
	RouterMean float64 `json:"router_event_to_command_mean_ms"`
	RouterP99  float64 `json:"router_event_to_command_p99_bucket_ms"`
	// RouterBusySeconds is the time the router's follower of
	// sb.conversations.v1 spent handling RouterEvents events (its batches'
	// durations summed over partitions, from
	// messaging_process_duration_seconds), and RouterMsPerOffer that time
	// per conversation offered: the router's cost of one conversation.
	RouterBusySeconds float64 `json:"router_busy_seconds"`
	RouterEvents      int     `json:"router_events"`
	RouterMsPerOffer  float64 `json:"router_ms_per_offer"`

	// Decisions: offers applied per second from the first to the last of
	// the phase (their events' times), and the most in one second.
	DecisionsPerSecond float64 `json:"decisions_per_second"`
	PeakDecisions      float64 `json:"decisions_peak_second"`
	// Seconds runs from the phase's first webhook to its last offer on
	// the streams.
	Seconds float64 `json:"seconds"`

	// Where the time went: CPU seconds of the binary (its /metrics), of
	// Redis (INFO cpu) and of the whole machine (/proc/stat: whatever
	// else runs there counts too; two cores give two a second).
	BinaryCPUSeconds  float64 `json:"binary_cpu_seconds"`
	RedisCPUSeconds   float64 `json:"redis_cpu_seconds"`
	MachineCPUSeconds float64 `json:"machine_busy_cpu_seconds"`
	// Redis's own count of the scripts (INFO commandstats), per offer:
	// the time Redis spent in them (its clock: stretched when Redis waits
	// for a core), and the commands they ran that read agents (HMGET of
	// an agent's hash, ZSCORE of their heartbeat: the pick reads both for
	// each idle agent it looks at, up to 500).
	ScriptCalls      int     `json:"redis_script_calls"`
	ScriptMsPerOffer float64 `json:"redis_script_ms_per_offer"`
	HMGETPerOffer    float64 `json:"redis_hmget_per_offer"`
	ZSCOREPerOffer   float64 `json:"redis_zscore_per_offer"`
}

const (
	// routingClients is how many set-up requests (agents created, set
	// online) go at once: each holds a database connection, of which the
	// binary has 16.
	routingClients = 16
	// routingOfferSeconds is the queue's offer timeout: longer than the
	// run, so that no offer lapses (nobody accepts) and each conversation
	// is offered once.
	routingOfferSeconds = 3600
	// routingBeat is how often the bench refreshes the agents' heartbeats
	// in Redis, a sixth of the default 30 s presence window.
	routingBeat = 5 * time.Second
	// routingWait bounds every wait for the binary; for the offers, the
	// wait without a new one.
	routingWait = 3 * time.Minute
	// routingTargetP99 and routingGoalP99 are the target and
	// goal for the p99 of creation to offer on the stream, in ms.
	routingTargetP99 = 100.0
	routingGoalP99   = 50.0
	// routingPrefix is the Redis prefix of the router (router.RedisPrefix)
	// and presencePrefix the inbox's presence one (redis.PresencePrefix).
	routingPrefix  = "switchboard:router:"
	presencePrefix = "switchboard:"
	// offerLatency is the router's histogram on /metrics; batchSize is
	// the consumers' histogram of messages per batch.
	offerLatency = "switchboard_router_offer_latency_seconds"
	batchSize    = "messaging_batch_message_count"
	// routerGroup is the router's consumer group on sb.conversations.v1
	// (router.ConversationsGroup).
	routerGroup = "switchboard-router"
)

// routingPaced is how many conversations the paced phase sends.
func routingPaced(o options) int {
	return min(o.routingConversations, int(float64(o.routingRate)*o.routingDuration.Seconds()))
}

// routingScenario runs the routing scenario o.routingRuns times and prints
// it.
func routingScenario(ctx context.Context, o options, w io.Writer, report map[string]any) error {
	if o.routingAgents < 1 || o.routingCapacity < 1 || o.routingCapacity > 100 || o.routingConversations < 1 || o.routingRate < 1 ||
		o.routingDuration < 0 || o.routingStreams < 1 || o.routingStreams > o.routingAgents || o.routingRuns < 1 || o.concurrency < 1 {
		return fmt.Errorf("-routing-agents, -routing-conversations, -routing-rate, -routing-runs and -c must be at least 1, -routing-capacity 1 to 100, -routing-duration not negative, -routing-streams 1 to -routing-agents")
	}
	if slots := o.routingAgents * o.routingCapacity; o.routingConversations > slots {
		return fmt.Errorf("-routing-conversations %d is more than the agents can hold (-routing-agents x -routing-capacity = %d): nobody accepts, so each offer holds its place until the end", o.routingConversations, slots)
	}
	paced := routingPaced(o)
	backlog := o.routingConversations - paced
	redisWhere := "the local Redis " + o.routingRedis
	if o.routingRedis == "" {
		redisWhere = "the embedded Redis (miniredis)"
	}
	fmt.Fprintf(w, "\nrouting scenario: %d agents online (capacity %d each, one push queue); %d new chat conversations at %d/s, then a backlog of %d as fast as answered at c=%d; every offer timed on %d agents' streams; router state in %s; %d runs\n\n",
		o.routingAgents, o.routingCapacity, paced, o.routingRate, backlog, o.concurrency, o.routingStreams, redisWhere, o.routingRuns)
	var results []RoutingResult
	for r := 1; r <= o.routingRuns; r++ {
		var res RoutingResult
		var err error
		if res.PgbenchInsertTPS, err = pgbenchInsert(ctx, o); err != nil {
			return err
		}
		if res.RedisSetOPS, err = redisSet(ctx, o.concurrency); err != nil {
			return err
		}
		if err := routingRun(ctx, o, w, &res); err != nil {
			return fmt.Errorf("routing scenario, run %d: %w", r, err)
		}
		p, b := res.Paced, res.Backlog
		fmt.Fprintf(w, "run %d: pgbench %.0f inserts/s, redis %.0f SET/s | %d agents | paced %d/s: created -> offer on the stream p50 %.1f ms p99 %.1f ms, %d of %d offered | backlog %d: %.0f decisions/s (peak %.0f), %d of %d offered\n",
			r, res.PgbenchInsertTPS, res.RedisSetOPS, res.Agents, p.Rate, p.StreamP50, p.StreamP99, p.Offered, p.Conversations,
			b.Conversations, b.DecisionsPerSecond, b.PeakDecisions, b.Offered, b.Conversations)
		results = append(results, res)
	}

	med := medianOver(results)
	phase := func(get func(RoutingResult) RoutingPhase) RoutingPhase {
		f := func(v func(RoutingPhase) float64) float64 {
			return med(func(r RoutingResult) float64 { return v(get(r)) })
		}
		sum := func(v func(RoutingPhase) int) int {
			n := 0
			for _, r := range results {
				n += v(get(r))
			}
			return n
		}
		first := get(results[0])
		return RoutingPhase{
			Conversations:      first.Conversations,
			Rate:               first.Rate,
			SendSeconds:        f(func(p RoutingPhase) float64 { return p.SendSeconds }),
			SentPerSecond:      f(func(p RoutingPhase) float64 { return p.SentPerSecond }),
			StreamP50:          f(func(p RoutingPhase) float64 { return p.StreamP50 }),
			StreamP99:          f(func(p RoutingPhase) float64 { return p.StreamP99 }),
			StreamMax:          f(func(p RoutingPhase) float64 { return p.StreamMax }),
			EventP50:           f(func(p RoutingPhase) float64 { return p.EventP50 }),
			EventP99:           f(func(p RoutingPhase) float64 { return p.EventP99 }),
			RouterMean:         f(func(p RoutingPhase) float64 { return p.RouterMean }),
			RouterP99:          f(func(p RoutingPhase) float64 { return p.RouterP99 }),
			RouterBusySeconds:  f(func(p RoutingPhase) float64 { return p.RouterBusySeconds }),
			RouterEvents:       int(f(func(p RoutingPhase) float64 { return float64(p.RouterEvents) })),
			RouterMsPerOffer:   f(func(p RoutingPhase) float64 { return p.RouterMsPerOffer }),
			DecisionsPerSecond: f(func(p RoutingPhase) float64 { return p.DecisionsPerSecond }),
			PeakDecisions:      f(func(p RoutingPhase) float64 { return p.PeakDecisions }),
			Seconds:            f(func(p RoutingPhase) float64 { return p.Seconds }),
			BinaryCPUSeconds:   f(func(p RoutingPhase) float64 { return p.BinaryCPUSeconds }),
			RedisCPUSeconds:    f(func(p RoutingPhase) float64 { return p.RedisCPUSeconds }),
			MachineCPUSeconds:  f(func(p RoutingPhase) float64 { return p.MachineCPUSeconds }),
			ScriptCalls:        int(f(func(p RoutingPhase) float64 { return float64(p.ScriptCalls) })),
			ScriptMsPerOffer:   f(func(p RoutingPhase) float64 { return p.ScriptMsPerOffer }),
			HMGETPerOffer:      f(func(p RoutingPhase) float64 { return p.HMGETPerOffer }),
			ZSCOREPerOffer:     f(func(p RoutingPhase) float64 { return p.ZSCOREPerOffer }),
			// Counts are summed over the runs.
			Refused:     sum(func(p RoutingPhase) int { return p.Refused }),
			Created:     sum(func(p RoutingPhase) int { return p.Created }),
			Offered:     sum(func(p RoutingPhase) int { return p.Offered }),
			Missing:     sum(func(p RoutingPhase) int { return p.Missing }),
			Duplicates:  sum(func(p RoutingPhase) int { return p.Duplicates }),
			OffersSent:  sum(func(p RoutingPhase) int { return p.OffersSent }),
			OffersStale: sum(func(p RoutingPhase) int { return p.OffersStale }),
		}
	}
	m := RoutingResult{
		PgbenchInsertTPS: med(func(r RoutingResult) float64 { return r.PgbenchInsertTPS }),
		RedisSetOPS:      med(func(r RoutingResult) float64 { return r.RedisSetOPS }),
		Agents:           o.routingAgents,
		Capacity:         o.routingCapacity,
		AgentsSeconds:    med(func(r RoutingResult) float64 { return r.AgentsSeconds }),
		PresenceSeconds:  med(func(r RoutingResult) float64 { return r.PresenceSeconds }),
		ReadySeconds:     med(func(r RoutingResult) float64 { return r.ReadySeconds }),
		Paced:            phase(func(r RoutingResult) RoutingPhase { return r.Paced }),
		Backlog:          phase(func(r RoutingResult) RoutingPhase { return r.Backlog }),
	}
	for _, r := range results {
		m.Reconnects += r.Reconnects
		m.Resets += r.Resets
	}
	runs := len(results)
	row := func(label, value, note string) {
		fmt.Fprintf(w, "  routing  %-52s %14s   %s\n", label, value, note)
	}
	ms := func(v float64) string { return fmt.Sprintf("%.1f ms", v) }
	count := func(n, of int) string { return fmt.Sprintf("%d of %d", n, of) }
	cpu := func(p RoutingPhase) string {
		redis := fmt.Sprintf("redis %.0f", p.RedisCPUSeconds)
		if o.routingRedis == "" {
			redis = "redis in the binary"
		}
		return fmt.Sprintf("CPU s: binary %.0f, %s, machine %.0f of %.0f", p.BinaryCPUSeconds, redis, p.MachineCPUSeconds, 2*p.Seconds)
	}
	offered := func(p RoutingPhase) {
		row("  offered", count(p.Offered, runs*p.Conversations), fmt.Sprintf("all: %s (never %d, twice %d); %d offer commands sent, %d refused stale",
			verdict(p.Offered == runs*p.Conversations), p.Missing, p.Duplicates, p.OffersSent, p.OffersStale))
		row("  CPU", "", cpu(p))
	}
	busy := func(p RoutingPhase) {
		row("  router: handling per conversation", ms(p.RouterMsPerOffer), fmt.Sprintf("its follower busy %.1f s for %d events, over %.1f s",
			p.RouterBusySeconds, p.RouterEvents, p.Seconds))
	}
	redis := func(p RoutingPhase) {
		if p.ScriptCalls > 0 {
			row("  redis: script time per offer", ms(p.ScriptMsPerOffer), fmt.Sprintf("%d script calls; per offer %.0f HMGET and %.0f ZSCORE",
				p.ScriptCalls, p.HMGETPerOffer, p.ZSCOREPerOffer))
		}
	}
	fmt.Fprintf(w, "\nmedians over %d runs (counts summed)\n", runs)
	fmt.Fprintf(w, "  ceiling  %-52s %10.0f rows/s\n", fmt.Sprintf("pgbench single-row INSERT, %d clients", o.concurrency), m.PgbenchInsertTPS)
	fmt.Fprintf(w, "  ceiling  %-52s %10.0f ops/s\n", fmt.Sprintf("redis-benchmark SET, %d clients", o.concurrency), m.RedisSetOPS)
	row(fmt.Sprintf("set-up: %d agents of capacity %d created, online", m.Agents, m.Capacity), fmt.Sprintf("%.1f s", m.AgentsSeconds+m.PresenceSeconds),
		fmt.Sprintf("created %.1f s, online %.1f s; all available to the router %.1f s later", m.AgentsSeconds, m.PresenceSeconds, m.ReadySeconds))
	if p := m.Paced; p.Conversations > 0 {
		row(fmt.Sprintf("paced, %d conversations at %d/s: created -> offer", p.Conversations, p.Rate), "", "on an agent's stream:")
		row("  p50", ms(p.StreamP50), "")
		row("  p99", ms(p.StreamP99), fmt.Sprintf("target <= %.0f ms: %s, goal <= %.0f ms: %s",
			routingTargetP99, verdict(p.StreamP99 <= routingTargetP99), routingGoalP99, verdict(p.StreamP99 <= routingGoalP99)))
		row("  max", ms(p.StreamMax), "")
		row("  created -> offer applied by the inbox, p50 / p99", fmt.Sprintf("%.1f / %.1f ms", p.EventP50, p.EventP99), "the offer event's own time")
		bucket := fmt.Sprintf("p99 <= %.0f ms (the router's histogram bucket)", p.RouterP99)
		if p.RouterP99 < 0 {
			bucket = "p99 above the router's last histogram bucket"
		}
		row("  router: event -> offer command sent, mean", ms(p.RouterMean), bucket)
		busy(p)
		offered(p)
		redis(p)
	}
	if b := m.Backlog; b.Conversations > 0 {
		row(fmt.Sprintf("backlog, %d conversations as fast as answered", b.Conversations), fmt.Sprintf("%.1f s", b.SendSeconds),
			fmt.Sprintf("sent at %.0f/s; offered over %.1f s", b.SentPerSecond, b.Seconds))
		row("  decisions per second, first to last offer", fmt.Sprintf("%.0f/s", b.DecisionsPerSecond), fmt.Sprintf("peak second %.0f", b.PeakDecisions))
		row("  created -> offer on a stream, p50 / p99", fmt.Sprintf("%.0f / %.0f ms", b.StreamP50, b.StreamP99), "time queued behind the backlog")
		busy(b)
		offered(b)
		redis(b)
	}
	row("streams: reconnections, resets", fmt.Sprintf("%d, %d", m.Reconnects, m.Resets), "a reset loses events: "+verdict(m.Resets == 0))
	report["routing"] = map[string]any{"runs": results, "median": m}
	return nil
}

// routedAgent is one agent of the scenario and their access token.
type routedAgent struct {
	id    string
	token string
}

// routingBench is one run of the routing scenario.
type routingBench struct {
	o      options
	w      io.Writer
	env    *runEnv
	node   *testkit.Node
	conn   *pgx.Conn
	rdb    *goredis.Client
	client *http.Client
	queue  string
	agents []routedAgent
	// stopBeat stops the heartbeats and waits for them to stop.
	stopBeat func()
}

// streamLog gathers what the agents' streams saw.
type streamLog struct {
	streams int
	mu      sync.Mutex
	convs   map[string]*convLog
	// phase is the phase whose conversations are being created: a
	// created event is counted in the phase current when it arrives (each
	// phase waits for its offers before the next begins).
	phase int
	// offered counts, by phase, the conversations whose offer every
	// stream saw; duplicates the offers seen twice on stream 0.
	offered    [2]atomic.Int64
	duplicates [2]atomic.Int64
	reconnects atomic.Int64
	resets     atomic.Int64
}

// convLog is what the streams saw of one conversation.
type convLog struct {
	phase   int
	created time.Time // the created event's time (the inbox's clock)
	offered time.Time // the first offer event's time
	// arrived is when that offer event arrived, on each stream (the
	// bench's clock).
	arrived []time.Time
	seen    int
}

// conv returns id's log, created in the current phase if new.
func (l *streamLog) conv(id string) *convLog {
	c := l.convs[id]
	if c == nil {
		c = &convLog{phase: l.phase, arrived: make([]time.Time, l.streams)}
		l.convs[id] = c
	}
	return c
}

func (l *streamLog) setPhase(p int) {
	l.mu.Lock()
	l.phase = p
	l.mu.Unlock()
}

// routingRun runs the routing scenario once on a fresh database.
func routingRun(ctx context.Context, o options, w io.Writer, res *RoutingResult) error {
	env, err := newRunEnv(ctx, o, "sbbench_routing_")
	if err != nil {
		return err
	}
	defer env.close()
	rb := &routingBench{o: o, w: w, env: env,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: max(o.concurrency, 256)}, Timeout: 30 * time.Second}}
	var args []string
	if o.routingRedis != "" {
		opt, err := goredis.ParseURL(o.routingRedis)
		if err != nil {
			return fmt.Errorf("-routing-redis: %w", err)
		}
		rb.rdb = goredis.NewClient(opt)
		defer rb.rdb.Close()
		if err := rb.rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("-routing-redis %s: %w", o.routingRedis, err)
		}
		// After the binary and the heartbeats stopped (deferred calls run
		// last in, first out): the tenant's keys go.
		defer rb.cleanRedis()
		defer func() {
			if rb.stopBeat != nil {
				rb.stopBeat()
			}
		}()
		args = append(args, "-redis.url="+o.routingRedis)
	} else {
		// The embedded Redis is out of the bench's reach: a presence
		// window longer than the run stands in for the heartbeats.
		args = append(args, "-presence.window=10m")
	}
	if rb.node, err = env.start(ctx, o, o.addr, args...); err != nil {
		return err
	}
	defer rb.node.Stop()
	if rb.conn, err = pgx.Connect(ctx, env.dbURL); err != nil {
		return err
	}
	defer rb.conn.Close(ctx)
	var autovacuum string
	if err := rb.conn.QueryRow(ctx, `SHOW autovacuum`).Scan(&autovacuum); err == nil && autovacuum != "on" {
		rb.logf("note: autovacuum is %s on this server: nothing is vacuumed or analyzed during the run, and a long one (-routing-conversations 100000) slows down as dead rows and unmerged GIN entries pile up", autovacuum)
	}

	// The chat channel goes live once the connector has read its
	// announcement; the warm-up's conversation has no queue.
	err = poll(ctx, 30*time.Second, 50*time.Millisecond, func() (bool, error) {
		status, err := send(rb.client, rb.node.Base(), env.boot, "warmup", "warmup")
		return err == nil && status == http.StatusAccepted, nil
	})
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("the chat channel never went live:\n%s", rb.node.Logs())
	}
	if err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func(context.Context, *RoutingResult) error
	}{
		{"queue", rb.setupQueue},
		{"agents", rb.createAgents},
		{"online", rb.online},
		{"conversations", rb.conversations},
	}
	for _, s := range steps {
		if err := s.fn(ctx, res); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func (rb *routingBench) logf(format string, args ...any) {
	fmt.Fprintf(rb.w, "  "+format+"\n", args...)
}

// call sends body (nil: none) as JSON to path with token and returns the
// status and answer.
func (rb *routingBench) call(ctx context.Context, method, path, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, rb.node.Base()+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := rb.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// expect sends a request and fails unless it is answered want; out (nil:
// ignored) gets the answer.
func (rb *routingBench) expect(ctx context.Context, want int, method, path, token string, body, out any) error {
	status, raw, err := rb.call(ctx, method, path, token, body)
	if err != nil {
		return err
	}
	if status != want {
		return fmt.Errorf("%s %s: %d %s", method, path, status, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// parallel runs fn(i) for every i below n, width at a time; the first
// error stops it.
func parallel(ctx context.Context, n, width int, fn func(i int) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(width, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				mu.Lock()
				failed := firstErr != nil
				mu.Unlock()
				if failed {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// setupQueue creates the push queue and makes it the chat channel's
// default: every conversation the webhooks create waits there.
func (rb *routingBench) setupQueue(ctx context.Context, _ *RoutingResult) error {
	b := rb.env.boot
	token := b.APIToken.Token
	var q struct {
		ID string `json:"id"`
	}
	if err := rb.expect(ctx, http.StatusCreated, http.MethodPost, "/v1/admin/queues", token, map[string]string{"name": "Bench push"}, &q); err != nil {
		return err
	}
	rb.queue = q.ID
	if err := rb.expect(ctx, http.StatusOK, http.MethodPut, "/v1/admin/queues/"+q.ID+"/routing", token,
		map[string]any{"mode": "push", "offer_seconds": routingOfferSeconds}, nil); err != nil {
		return err
	}
	return rb.expect(ctx, http.StatusOK, http.MethodPut, "/v1/admin/channel-accounts/"+b.ChatChannel.ID+"/routing", token,
		map[string]any{"default_queue_id": q.ID}, nil)
}

// createAgents creates the agents through the admin API, without a
// password (a login hashes it with argon2, some 50 ms of CPU each), and
// mints each a session in SQL as a login would: the access token's
// SHA-256 in inbox.sessions.
func (rb *routingBench) createAgents(ctx context.Context, res *RoutingResult) error {
	n := rb.o.routingAgents
	res.Agents, res.Capacity = n, rb.o.routingCapacity
	rb.logf("creating %d agents through the admin API...", n)
	start := time.Now()
	rb.agents = make([]routedAgent, n)
	token := rb.env.boot.APIToken.Token
	err := parallel(ctx, n, routingClients, func(i int) error {
		var u struct {
			ID string `json:"id"`
		}
		err := rb.expect(ctx, http.StatusCreated, http.MethodPost, "/v1/admin/users", token, map[string]any{
			"email": fmt.Sprintf("agent-%05d@bench.example", i), "name": fmt.Sprintf("Agent %05d", i), "role": "agent",
			"capacity": rb.o.routingCapacity, "queue_ids": []string{rb.queue}}, &u)
		rb.agents[i].id = u.ID
		return err
	})
	if err != nil {
		return err
	}
	res.AgentsSeconds = time.Since(start).Seconds()
	ids := make([]string, n)
	access := make([][]byte, n)
	refresh := make([][]byte, n)
	for i := range rb.agents {
		a := &rb.agents[i]
		if a.token, err = secret("sba_"); err != nil {
			return err
		}
		r, err := secret("sbr_")
		if err != nil {
			return err
		}
		ah, rh := sha256.Sum256([]byte(a.token)), sha256.Sum256([]byte(r))
		ids[i], access[i], refresh[i] = a.id, ah[:], rh[:]
	}
	_, err = rb.conn.Exec(ctx, `INSERT INTO inbox.sessions (id, tenant_id, user_id, access_hash, access_expires_at, refresh_hash, refresh_expires_at)
		SELECT gen_random_uuid(), $1, u, a, now() + interval '2 hours', r, now() + interval '1 day'
		FROM unnest($2::uuid[], $3::bytea[], $4::bytea[]) AS x(u, a, r)`, rb.env.boot.Tenant.ID, ids, access, refresh)
	if err != nil {
		return fmt.Errorf("mint sessions: %w", err)
	}
	rb.logf("%d agents created in %.1f s, their sessions minted in SQL", n, res.AgentsSeconds)
	return nil
}

// secret is a random token with prefix, as the inbox makes them.
func secret(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// online sets every agent online through the API, which records their
// first heartbeat and announces their presence to the router; the bench
// then keeps their heartbeats fresh in Redis itself (see beat). It
// returns once the router holds every agent available.
func (rb *routingBench) online(ctx context.Context, res *RoutingResult) error {
	n := len(rb.agents)
	rb.logf("setting %d agents online through PUT /v1/me/presence...", n)
	start := time.Now()
	err := parallel(ctx, n, routingClients, func(i int) error {
		return rb.expect(ctx, http.StatusOK, http.MethodPut, "/v1/me/presence", rb.agents[i].token, map[string]string{"status": "online"}, nil)
	})
	if err != nil {
		return err
	}
	res.PresenceSeconds = time.Since(start).Seconds()
	if rb.rdb != nil {
		bctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			rb.beat(bctx)
		}()
		rb.stopBeat = func() { cancel(); <-done }
	}
	online := time.Now()
	var got int
	err = poll(ctx, routingWait, 100*time.Millisecond, func() (bool, error) {
		var err error
		got, err = rb.available(ctx)
		return got >= n, err
	})
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("only %d of %d agents available to the router after %s", got, n, routingWait)
	}
	if err != nil {
		return err
	}
	res.ReadySeconds = time.Since(online).Seconds()
	rb.logf("%d agents online in %.1f s, all available to the router %.1f s later", n, res.PresenceSeconds, res.ReadySeconds)
	return nil
}

// available counts the agents the router holds available: in the
// queue's idle set in Redis, or, out of the bench's reach (the embedded
// Redis), online in its view.
func (rb *routingBench) available(ctx context.Context) (int, error) {
	if rb.rdb != nil {
		n, err := rb.rdb.ZCard(ctx, rb.tenantKey()+"q:"+rb.queue+":idle").Result()
		return int(n), err
	}
	var n int
	err := rb.conn.QueryRow(ctx, `SELECT count(*) FROM router.agents WHERE presence = 'online' AND capacity > 0 AND $1::uuid = ANY(queue_ids)`,
		rb.queue).Scan(&n)
	return n, err
}

func (rb *routingBench) tenantKey() string {
	return routingPrefix + "t:" + rb.env.boot.Tenant.ID + ":"
}

// beat refreshes every agent's heartbeat every routingBeat until ctx
// ends, straight in the presence set the inbox keeps in Redis (one ZADD
// of every agent): what POST /v1/me/heartbeat does for one agent, which
// for 10,000 agents every 10 s would be 1,000 requests a second on the
// measured binary's two cores.
func (rb *routingBench) beat(ctx context.Context) {
	key := presencePrefix + "presence:" + rb.env.boot.Tenant.ID
	members := make([]goredis.Z, len(rb.agents))
	for {
		now := float64(time.Now().UnixMilli())
		for i, a := range rb.agents {
			members[i] = goredis.Z{Score: now, Member: a.id}
		}
		_, err := rb.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.ZAdd(ctx, key, members...)
			p.PExpire(ctx, key, 10*routingBeat)
			return nil
		})
		if err != nil && ctx.Err() == nil {
			rb.logf("heartbeats not refreshed: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(routingBeat):
		}
	}
}

// cleanRedis removes the tenant's keys from the shared Redis.
func (rb *routingBench) cleanRedis() {
	ctx := context.Background()
	tenant := rb.env.boot.Tenant.ID
	var keys []string
	iter := rb.rdb.Scan(ctx, 0, rb.tenantKey()+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	keys = append(keys, presencePrefix+"presence:"+tenant, presencePrefix+"status:"+tenant)
	for i := 0; i < len(keys); i += 1000 {
		rb.rdb.Unlink(ctx, keys[i:min(i+1000, len(keys))]...)
	}
	pending, _ := rb.rdb.ZRange(ctx, routingPrefix+"pending", 0, -1).Result()
	for _, m := range pending {
		if strings.HasPrefix(m, tenant+"|") {
			rb.rdb.ZRem(ctx, routingPrefix+"pending", m)
		}
	}
}

// Substrings that mark the frames the streams decode: the rest (message
// events, other actions) is skipped without decoding. The inbox marshals
// events with encoding/json: no spaces.
var (
	createdMark = []byte(`"action":"created"`)
	offerMark   = []byte(`"action":"offer"`)
)

// follow reads agent a's stream (stream number idx) until ctx ends,
// resuming where it was when the hub drops it; ready is closed once the
// first live events start.
func (rb *routingBench) follow(ctx context.Context, idx int, a routedAgent, log *streamLog, ready chan<- struct{}) error {
	client := &http.Client{Transport: &http.Transport{}}
	last := ""
	first := true
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rb.node.Base()+"/v1/stream", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+a.token)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("stream of agent %s: %w", a.id, err)
		}
		if resp.StatusCode != http.StatusOK {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return fmt.Errorf("stream of agent %s: %d %s", a.id, resp.StatusCode, raw)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 256<<10), 8<<20)
		var event string
		var data []byte
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case len(line) == 0:
				switch event {
				case "ready":
					if first {
						close(ready)
						first = false
					}
				case "reset":
					log.resets.Add(1)
				default:
					log.record(idx, data, time.Now())
				}
				event, data = "", data[:0]
			case bytes.HasPrefix(line, []byte("id: ")):
				last = string(line[4:])
			case bytes.HasPrefix(line, []byte("event: ")):
				event = string(line[7:])
			case bytes.HasPrefix(line, []byte("data: ")):
				data = append(data, line[6:]...)
			}
		}
		resp.Body.Close()
		if ctx.Err() == nil {
			log.reconnects.Add(1)
		}
	}
	return nil
}

// record notes a created or offer event that arrived on stream idx at.
func (l *streamLog) record(idx int, data []byte, at time.Time) {
	created := bytes.Contains(data, createdMark)
	if !created && !bytes.Contains(data, offerMark) {
		return
	}
	var f struct {
		Time time.Time `json:"time"`
		Data struct {
			Action       string `json:"action"`
			Conversation struct {
				ID string `json:"id"`
			} `json:"conversation"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &f); err != nil || f.Data.Conversation.ID == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.conv(f.Data.Conversation.ID)
	switch f.Data.Action {
	case "created":
		c.created = f.Time
	case "offer":
		if !c.arrived[idx].IsZero() {
			if idx == 0 {
				l.duplicates[c.phase].Add(1)
			}
			return
		}
		c.arrived[idx] = at
		if c.offered.IsZero() {
			c.offered = f.Time
		}
		c.seen++
		if c.seen == l.streams {
			l.offered[c.phase].Add(1)
		}
	}
}

// conversations opens the sampled agents' streams and runs the two
// phases: the paced one, then the backlog.
func (rb *routingBench) conversations(ctx context.Context, res *RoutingResult) error {
	o := rb.o
	paced := routingPaced(o)
	log := &streamLog{streams: o.routingStreams, convs: make(map[string]*convLog, o.routingConversations)}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		readErr error
	)
	for i := range log.streams {
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rb.follow(sctx, i, rb.agents[i], log, ready); err != nil {
				errMu.Lock()
				readErr = errors.Join(readErr, err)
				errMu.Unlock()
			}
		}()
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			stop()
			wg.Wait()
			return fmt.Errorf("stream %d not ready after 30 s: %v", i, readErr)
		}
	}
	defer wg.Wait()
	rb.logf("%d agents' streams open", log.streams)
	if paced > 0 {
		if err := rb.phase(ctx, log, 0, "paced", paced, o.routingRate, &res.Paced); err != nil {
			return err
		}
	}
	if n := o.routingConversations - paced; n > 0 {
		if err := rb.phase(ctx, log, 1, "backlog", n, 0, &res.Backlog); err != nil {
			return err
		}
	}
	stop()
	wg.Wait()
	res.Reconnects, res.Resets = int(log.reconnects.Load()), int(log.resets.Load())
	errMu.Lock()
	defer errMu.Unlock()
	return readErr
}

// phase sends n conversations' first messages, rate per second (0: as
// fast as answered at -c), and waits until every stream saw every offer.
func (rb *routingBench) phase(ctx context.Context, log *streamLog, idx int, name string, n, rate int, res *RoutingPhase) error {
	res.Conversations, res.Rate = n, rate
	log.setPhase(idx)
	before, err := rb.snapshot(ctx)
	if err != nil {
		return err
	}
	feed := fmt.Sprintf("%d/s", rate)
	if rate == 0 {
		feed = fmt.Sprintf("as fast as answered at c=%d", rb.o.concurrency)
	}
	rb.logf("%s: sending %d conversations' first messages %s...", name, n, feed)
	start := time.Now()
	var refused atomic.Int64
	sendOne := func(i int) error {
		session := fmt.Sprintf("%s-%06d", name, i)
		for attempt := 0; ; attempt++ {
			status, err := send(rb.client, rb.node.Base(), rb.env.boot, session, session)
			if err == nil && status == http.StatusAccepted {
				return nil
			}
			if attempt == 100 {
				return fmt.Errorf("chat webhook of %s never answered 202 (last %d, %v)", session, status, err)
			}
			// Not acknowledged: a chat platform sends it again.
			refused.Add(1)
			time.Sleep(10 * time.Millisecond)
		}
	}
	if rate == 0 {
		err = parallel(ctx, n, rb.o.concurrency, sendOne)
	} else {
		err = paced(ctx, n, rate, sendOne)
	}
	if err != nil {
		return err
	}
	res.SendSeconds = time.Since(start).Seconds()
	res.SentPerSecond = float64(n) / res.SendSeconds
	res.Refused = int(refused.Load())
	// However long the backlog takes, as long as offers keep coming:
	// the wait gives up after routingWait without a new one.
	var (
		got      int64
		progress = time.Now()
	)
	for got = log.offered[idx].Load(); got < int64(n); got = log.offered[idx].Load() {
		if time.Since(progress) > routingWait {
			rb.logf("%s: only %d of %d offers seen on every stream, none new for %s", name, got, n, routingWait)
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if log.offered[idx].Load() > got {
			progress = time.Now()
		}
	}
	after, err := rb.snapshot(ctx)
	if err != nil {
		return err
	}
	log.mu.Lock()
	rb.results(res, log, idx, start, before, after)
	log.mu.Unlock()
	rb.logf("%s: sent in %.1f s (%.0f/s); %d of %d offered within %.1f s; created -> offer on a stream p50 %.1f ms p99 %.1f ms; %.0f decisions/s (peak second %.0f)",
		name, res.SendSeconds, res.SentPerSecond, res.Offered, n, res.Seconds, res.StreamP50, res.StreamP99, res.DecisionsPerSecond, res.PeakDecisions)
	return nil
}

// paced calls fn(i) for every i below n, i due at start + i/rate whatever
// the earlier calls' answers (open loop), from enough goroutines that
// the pacing, not the senders, sets the rate.
func paced(ctx context.Context, n, rate int, fn func(i int) error) error {
	jobs := make(chan int, 1024)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if err := fn(i); err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
				}
			}
		}()
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range n {
		// Sleeps are coarser than a millisecond: a late dispatcher sends
		// the messages already due at once, keeping the average rate.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// routingSnapshot is what is read before and after the feed: the
// binary's metrics, Redis's counters, the machine's CPU time.
type routingSnapshot struct {
	at         time.Time
	hist       metricsSnapshot
	binaryCPU  float64
	machineCPU float64
	redisCPU   float64
	// offersSent and offersStale are the router's and the inbox's
	// counters of offers.
	offersSent, offersStale float64
	// redis is INFO commandstats: command -> calls and microseconds.
	redis map[string][2]float64
}

func (rb *routingBench) snapshot(ctx context.Context) (routingSnapshot, error) {
	s := routingSnapshot{at: time.Now()}
	status, raw, err := rb.call(ctx, http.MethodGet, "/metrics", "", nil)
	if err != nil {
		return s, err
	}
	if status != http.StatusOK {
		return s, fmt.Errorf("GET /metrics: %d", status)
	}
	s.hist = parseHistograms(raw, "", offerLatency)
	group := parseHistograms(raw, `messaging_consumer_group_name="`+routerGroup+`"`, processDuration, batchSize)
	for name, h := range group {
		s.hist[name+"/"+routerGroup] = h
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		value := func() float64 {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			return v
		}
		switch {
		case strings.HasPrefix(line, "process_cpu_seconds_total "):
			s.binaryCPU = value()
		case strings.HasPrefix(line, "switchboard_router_offers_total"):
			s.offersSent += value()
		case strings.HasPrefix(line, "switchboard_inbox_commands_total{") && strings.Contains(line, `kind="offer"`) &&
			strings.Contains(line, `outcome="stale"`):
			s.offersStale += value()
		}
	}
	s.machineCPU = machineBusy()
	if rb.rdb != nil {
		info, err := rb.rdb.Info(ctx, "commandstats", "cpu").Result()
		if err != nil {
			return s, err
		}
		s.redis = map[string][2]float64{}
		for _, line := range strings.Split(info, "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "used_cpu_sys:"); ok {
				f, _ := strconv.ParseFloat(v, 64)
				s.redisCPU += f
			} else if v, ok := strings.CutPrefix(line, "used_cpu_user:"); ok {
				f, _ := strconv.ParseFloat(v, 64)
				s.redisCPU += f
			} else if rest, ok := strings.CutPrefix(line, "cmdstat_"); ok {
				name, fields, _ := strings.Cut(rest, ":")
				var calls, usec float64
				for _, kv := range strings.Split(fields, ",") {
					k, v, _ := strings.Cut(kv, "=")
					switch k {
					case "calls":
						calls, _ = strconv.ParseFloat(v, 64)
					case "usec":
						usec, _ = strconv.ParseFloat(v, 64)
					}
				}
				s.redis[name] = [2]float64{calls, usec}
			}
		}
	}
	return s, nil
}

// machineBusy returns the machine's busy CPU time so far, in seconds, from
// /proc/stat (0 where there is none).
func machineBusy() float64 {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, f := range fields[1:] {
		v, _ := strconv.ParseFloat(f, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy / 100 // USER_HZ
}

// results computes a phase's figures from what the streams saw of its
// conversations and the snapshots around it.
func (rb *routingBench) results(res *RoutingPhase, log *streamLog, idx int, start time.Time, before, after routingSnapshot) {
	var (
		onStream, applied []time.Duration
		offers            []time.Time
		last              time.Time
	)
	for _, c := range log.convs {
		if c.phase != idx || c.created.IsZero() {
			continue // the warm-up's, created before the streams opened
		}
		res.Created++
		if c.offered.IsZero() {
			res.Missing++
			continue
		}
		res.Offered++
		offers = append(offers, c.offered)
		applied = append(applied, c.offered.Sub(c.created))
		for _, at := range c.arrived {
			if at.IsZero() {
				continue
			}
			onStream = append(onStream, at.Sub(c.created))
			if at.After(last) {
				last = at
			}
		}
	}
	res.Duplicates = int(log.duplicates[idx].Load())
	res.StreamP50, res.StreamP99 = p50p99(onStream)
	res.StreamMax = percentile(onStream, 1)
	res.EventP50, res.EventP99 = p50p99(applied)
	slices.SortFunc(offers, func(a, b time.Time) int { return a.Compare(b) })
	if len(offers) > 1 {
		if span := offers[len(offers)-1].Sub(offers[0]).Seconds(); span > 0 {
			res.DecisionsPerSecond = float64(len(offers)-1) / span
		}
		perSecond := map[int64]int{}
		for _, t := range offers {
			perSecond[t.Unix()]++
		}
		for _, k := range perSecond {
			res.PeakDecisions = math.Max(res.PeakDecisions, float64(k))
		}
	}
	if !last.IsZero() {
		res.Seconds = last.Sub(start).Seconds()
	}
	res.RouterMean, res.RouterP99 = after.hist.delta(before.hist, offerLatency)
	if math.IsInf(res.RouterP99, 1) {
		res.RouterP99 = -1 // above the last bucket; JSON has no infinity
	}
	_, res.RouterBusySeconds = after.hist.busy(before.hist, processDuration+"/"+routerGroup)
	_, events := after.hist.busy(before.hist, batchSize+"/"+routerGroup)
	res.RouterEvents = int(events)
	if res.Offered > 0 {
		res.RouterMsPerOffer = 1000 * res.RouterBusySeconds / float64(res.Offered)
	}
	res.BinaryCPUSeconds = after.binaryCPU - before.binaryCPU
	res.OffersSent = int(after.offersSent - before.offersSent)
	res.OffersStale = int(after.offersStale - before.offersStale)
	res.MachineCPUSeconds = after.machineCPU - before.machineCPU
	res.RedisCPUSeconds = after.redisCPU - before.redisCPU
	if after.redis != nil && res.Offered > 0 {
		d := func(name string) (calls, usec float64) {
			a, b := after.redis[name], before.redis[name]
			return a[0] - b[0], a[1] - b[1]
		}
		calls, usec := d("evalsha")
		ec, eu := d("eval")
		offered := float64(res.Offered)
		res.ScriptCalls = int(calls + ec)
		res.ScriptMsPerOffer = (usec + eu) / 1000 / offered
		hm, _ := d("hmget")
		zs, _ := d("zscore")
		res.HMGETPerOffer, res.ZSCOREPerOffer = hm/offered, zs/offered
	}
}
