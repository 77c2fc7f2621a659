package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// wait bounds every wait of these tests; nothing is timed.
const wait = 10 * time.Second

// fakeClock fires its timers when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	waiters []chan time.Time
}

func (c *fakeClock) Now() time.Time { return time.Now() }

func (c *fakeClock) After(time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, ch)
	return ch
}

func (c *fakeClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// fire fires every timer armed so far, once at least one is.
func (c *fakeClock) fire(t *testing.T) {
	t.Helper()
	testkit.Eventually(t, wait, func() bool { return c.waiting() > 0 }, "no timer armed")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.waiters {
		ch <- time.Now()
	}
	c.waiters = nil
}

// rig is a hub fed by hand (no Kafka) behind an HTTP server that
// authenticates "Bearer <name>" as principals[name].
type rig struct {
	hub        *Hub
	clock      *fakeClock
	srv        *httptest.Server
	principals map[string]domain.Principal
	next       map[int]int64
}

// Principals of the tests: Acme has queues q1 and q2.
var principals = map[string]domain.Principal{
	"agent":      {Tenant: "acme", UserID: "u1", Role: domain.RoleAgent, Queues: []string{"q1"}},
	"supervisor": {Tenant: "acme", UserID: "u2", Role: domain.RoleSupervisor},
	"stranger":   {Tenant: "bravo", UserID: "u3", Role: domain.RoleAgent, Queues: []string{"q1"}},
}

// newRig starts a hub whose topic has two empty partitions, unless
// started is false.
func newRig(t *testing.T, cfg Config, started bool) *rig {
	t.Helper()
	clock := &fakeClock{}
	h, err := New(bus.Config{}, cfg, telemetry.Discard(), clock)
	require.NoError(t, err)
	r := &rig{hub: h, clock: clock, principals: principals, next: map[int]int64{0: 0, 1: 0}}
	if started {
		h.begin(map[int]int64{0: 0, 1: 0})
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if p, ok := r.principals[name]; ok {
			req = req.WithContext(domain.WithPrincipal(req.Context(), p))
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	t.Cleanup(h.stop) // ends the streams, or the server's Close waits for them
	return r
}

// publish delivers an event of tenant about a conversation in queue (""
// for none) with assignees, on partition; marker names it in its data.
func (r *rig) publish(t *testing.T, partition int, tenant, queue, marker string, assignees ...string) {
	t.Helper()
	conv := map[string]any{"id": "c-" + marker, "state": "new", "queue_id": nil, "assignee_ids": assignees}
	if queue != "" {
		conv["queue_id"] = queue
	}
	ev, err := events.New(events.TypeConversationMessage, "test", tenant, time.Now(), map[string]any{"marker": marker, "conversation": conv})
	require.NoError(t, err)
	m := ev.Message(context.Background(), events.TopicConversations, []byte("k"))
	m.Offset = r.next[partition]
	r.next[partition]++
	r.hub.deliver(context.Background(), partition, m)
}

// sse is one block of the stream: an event, or a comment.
type sse struct {
	id, event, data, comment string
	hasID                    bool
}

// marker is the marker of an event's data, "" for others.
func (e sse) marker() string {
	var p struct {
		Data struct {
			Marker string `json:"marker"`
		} `json:"data"`
	}
	_ = json.Unmarshal([]byte(e.data), &p)
	return p.Data.Marker
}

type client struct {
	resp   *http.Response
	blocks chan sse
	cancel context.CancelFunc
}

// connect opens a stream as name, resuming from lastEventID if not empty.
func (r *rig) connect(t *testing.T, name, lastEventID string) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.srv.URL+"/v1/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+name)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	c := &client{resp: resp, blocks: make(chan sse, 1000), cancel: cancel}
	go readSSE(resp.Body, c.blocks)
	return c
}

// readSSE parses the stream into blocks until it ends, then closes out.
func readSSE(body io.Reader, out chan<- sse) {
	defer close(out)
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var b sse
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			out <- b
			b = sse{}
		case strings.HasPrefix(line, ": "):
			b.comment = line[2:]
		case strings.HasPrefix(line, "id: "):
			b.id, b.hasID = line[4:], true
		case strings.HasPrefix(line, "event: "):
			b.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			b.data = line[6:]
		}
	}
}

// next returns the next block, failing when none comes in time or the
// stream ended.
func (c *client) next(t *testing.T) sse {
	t.Helper()
	select {
	case b, ok := <-c.blocks:
		require.True(t, ok, "the stream ended")
		return b
	case <-time.After(wait):
		t.Fatal("no event came")
		return sse{}
	}
}

// until returns the events up to the one with marker, that one included.
func (c *client) until(t *testing.T, marker string) []sse {
	t.Helper()
	var got []sse
	for {
		b := c.next(t)
		got = append(got, b)
		if b.marker() == marker {
			return got
		}
	}
}

// ready reads up to the ready event and returns what came before it and
// the ready event's id.
func (c *client) ready(t *testing.T) ([]sse, string) {
	t.Helper()
	var before []sse
	for {
		b := c.next(t)
		if b.event == "ready" {
			require.True(t, b.hasID, "ready carries the position")
			return before, b.id
		}
		before = append(before, b)
	}
}

// ended reports whether the stream ended, within the bound.
func (c *client) ended(t *testing.T) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case _, ok := <-c.blocks:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the stream did not end")
		}
	}
}

func markers(blocks []sse) []string {
	var out []string
	for _, b := range blocks {
		if m := b.marker(); m != "" {
			out = append(out, m)
		}
	}
	return out
}

func TestStreamHeadersAndEventFormat(t *testing.T) {
	r := newRig(t, Config{}, true)
	c := r.connect(t, "agent", "")
	require.Equal(t, http.StatusOK, c.resp.StatusCode)
	require.Equal(t, "text/event-stream", c.resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", c.resp.Header.Get("Cache-Control"))
	require.Equal(t, "no", c.resp.Header.Get("X-Accel-Buffering"))
	_, start := c.ready(t)
	require.Equal(t, "0:-1.1:-1", start, "nothing read yet on either partition")

	r.publish(t, 1, "acme", "q1", "m1")
	b := c.next(t)
	require.Equal(t, "0:-1.1:0", b.id)
	require.Equal(t, events.TypeConversationMessage, b.event)
	var data struct {
		Type string          `json:"type"`
		ID   string          `json:"id"`
		Time time.Time       `json:"time"`
		Data json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(b.data), &data))
	require.Equal(t, events.TypeConversationMessage, data.Type)
	require.NotEmpty(t, data.ID)
	require.False(t, data.Time.IsZero())
	require.JSONEq(t, `{"marker":"m1","conversation":{"id":"c-m1","state":"new","queue_id":"q1","assignee_ids":null}}`, string(data.Data))
}

func TestStreamShowsOnlyWhatThePrincipalMaySee(t *testing.T) {
	r := newRig(t, Config{}, true)
	agent, sup, stranger := r.connect(t, "agent", ""), r.connect(t, "supervisor", ""), r.connect(t, "stranger", "")
	for _, c := range []*client{agent, sup, stranger} {
		c.ready(t)
	}
	r.publish(t, 0, "acme", "q1", "own-queue")
	r.publish(t, 1, "acme", "q2", "other-queue")
	r.publish(t, 0, "acme", "q2", "assigned-to-agent", "u1")
	r.publish(t, 1, "acme", "q2", "assigned-to-another", "u2")
	r.publish(t, 0, "acme", "", "no-queue")
	r.publish(t, 1, "bravo", "q1", "bravo")
	r.publish(t, 0, "acme", "q1", "end")
	r.publish(t, 0, "bravo", "q1", "bravo-end")

	// Each client's events come in the hub's order, so reading up to the
	// last one shows every one it got.
	require.Equal(t, []string{"own-queue", "assigned-to-agent", "no-queue", "end"}, markers(agent.until(t, "end")))
	require.Equal(t, []string{"own-queue", "other-queue", "assigned-to-agent", "assigned-to-another", "no-queue", "end"}, markers(sup.until(t, "end")))
	require.Equal(t, []string{"bravo", "bravo-end"}, markers(stranger.until(t, "bravo-end")))
}

func TestStreamWithoutPrincipalIsRefused(t *testing.T) {
	r := newRig(t, Config{}, true)
	resp, err := http.Get(r.srv.URL + "/v1/stream")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestResumeReplaysWhatWasMissed(t *testing.T) {
	r := newRig(t, Config{}, true)
	c := r.connect(t, "agent", "")
	c.ready(t)
	r.publish(t, 0, "acme", "q1", "seen")
	seen := c.next(t)
	c.cancel()
	c.ended(t)

	r.publish(t, 1, "acme", "q1", "missed-1")
	r.publish(t, 0, "acme", "q2", "hidden")
	r.publish(t, 0, "acme", "", "missed-2")

	c = r.connect(t, "agent", seen.id)
	replay, live := c.ready(t)
	require.Equal(t, []string{"missed-1", "missed-2"}, markers(replay))
	require.Equal(t, "0:2.1:0", live)
	r.publish(t, 1, "acme", "q1", "live")
	require.Equal(t, []string{"live"}, markers(c.until(t, "live")))

	// The query parameter does the same, for clients that cannot set
	// headers on their first connection.
	resp, err := http.NewRequest(http.MethodGet, r.srv.URL+"/v1/stream?last_event_id="+seen.id, nil)
	require.NoError(t, err)
	resp.Header.Set("Authorization", "Bearer agent")
	res, err := http.DefaultClient.Do(resp)
	require.NoError(t, err)
	defer res.Body.Close()
	blocks := make(chan sse, 100)
	go readSSE(res.Body, blocks)
	q := &client{resp: res, blocks: blocks}
	replay, _ = q.ready(t)
	require.Equal(t, []string{"missed-1", "missed-2", "live"}, markers(replay))
}

func TestResumeFromAReplicaThatReadFurther(t *testing.T) {
	ahead := newRig(t, Config{}, true)
	behind := newRig(t, Config{}, true)
	c := ahead.connect(t, "agent", "")
	c.ready(t)
	for _, r := range []*rig{ahead, behind} {
		r.publish(t, 0, "acme", "q1", "one")
	}
	ahead.publish(t, 0, "acme", "q1", "two")
	two := c.until(t, "two")
	cursor := two[len(two)-1].id
	require.Equal(t, "0:1.1:-1", cursor)

	// The client moves to the replica that has not read "two" yet: it
	// must not get "two" twice, and its position must not go back.
	moved := behind.connect(t, "agent", cursor)
	replay, start := moved.ready(t)
	require.Empty(t, markers(replay))
	require.Equal(t, cursor, start)
	behind.publish(t, 0, "acme", "q1", "two")
	behind.publish(t, 1, "acme", "q1", "three")
	got := moved.until(t, "three")
	require.Equal(t, []string{"three"}, markers(got))
	require.Equal(t, "0:1.1:0", got[len(got)-1].id)
}

func TestResumeOlderThanTheRingResets(t *testing.T) {
	r := newRig(t, Config{History: 3}, true)
	c := r.connect(t, "supervisor", "")
	c.ready(t)
	var ids []string
	for _, m := range []string{"e1", "e2", "e3", "e4", "e5"} {
		r.publish(t, 0, "acme", "q1", m)
		ids = append(ids, c.until(t, m)[0].id)
	}

	// The ring holds e3..e5: from e2 nothing is lost.
	c2 := r.connect(t, "supervisor", ids[1])
	replay, _ := c2.ready(t)
	require.Equal(t, []string{"e3", "e4", "e5"}, markers(replay))

	// From e1, e2 is gone: reset, then live.
	c1 := r.connect(t, "supervisor", ids[0])
	before, start := c1.ready(t)
	require.Len(t, before, 1)
	require.Equal(t, "reset", before[0].event)
	require.Equal(t, ids[4], before[0].id)
	require.Equal(t, ids[4], start)
	r.publish(t, 0, "acme", "q1", "e6")
	require.Equal(t, []string{"e6"}, markers(c1.until(t, "e6")))

	// A replica that started after the cursor cannot replay either.
	late := newRig(t, Config{}, false)
	late.hub.begin(map[int]int64{0: 5, 1: 0})
	before, _ = late.connect(t, "supervisor", ids[2]).ready(t)
	require.Len(t, before, 1)
	require.Equal(t, "reset", before[0].event)
}

func TestRingIsBoundedByBytes(t *testing.T) {
	r := newRig(t, Config{History: 100, HistoryBytes: 1}, true)
	r.publish(t, 0, "acme", "q1", "e1")
	r.publish(t, 1, "acme", "q1", "e2")
	r.publish(t, 0, "acme", "q1", "e3")
	r.hub.mu.Lock()
	defer r.hub.mu.Unlock()
	require.Equal(t, 1, r.hub.n, "the newest event is kept, whatever its size")
	require.Equal(t, position{0, 0}, r.hub.floor)
}

func TestMalformedCursorStartsLive(t *testing.T) {
	r := newRig(t, Config{}, true)
	r.publish(t, 0, "acme", "q1", "old")
	for _, bad := range []string{"garbage", "0:1.0:2", "-"} {
		c := r.connect(t, "agent", bad)
		before, start := c.ready(t)
		require.Empty(t, before, "neither replay nor reset for %q", bad)
		require.Equal(t, "0:0.1:-1", start)
	}
}

func TestSlowClientIsDroppedWithoutHoldingTheHub(t *testing.T) {
	r := newRig(t, Config{ClientBuffer: 2}, true)
	slow, err := r.hub.subscribe(principals["agent"], nil)
	require.NoError(t, err)
	fast, err := r.hub.subscribe(principals["supervisor"], nil)
	require.NoError(t, err)
	for i, m := range []string{"e1", "e2", "e3", "e4"} {
		r.publish(t, 0, "acme", "q1", m) // returns: the hub never waits for a client
		<-fast.sub.ch
		if i < 2 {
			select {
			case <-slow.sub.gone:
				t.Fatalf("dropped after %d events with room for 2", i+1)
			default:
			}
		}
	}
	<-slow.sub.gone
	require.Equal(t, whySlow, slow.sub.why)
	select {
	case <-fast.sub.gone:
		t.Fatal("the fast client was dropped too")
	default:
	}
	r.hub.mu.Lock()
	require.Equal(t, 1, r.hub.clients)
	r.hub.mu.Unlock()

	// Its handler ends the response; the client reconnects and resumes.
	c := r.connect(t, "agent", "")
	c.ready(t)
	r.hub.mu.Lock()
	for s := range r.hub.subs["acme"] {
		if s.principal.UserID == "u1" {
			r.hub.dropLocked(s, whySlow)
		}
	}
	r.hub.mu.Unlock()
	c.ended(t)
}

func TestKeepaliveMovesTheCursorOn(t *testing.T) {
	r := newRig(t, Config{}, true)
	c := r.connect(t, "agent", "")
	_, start := c.ready(t)

	r.clock.fire(t)
	b := c.next(t)
	require.Equal(t, "keepalive", b.comment)
	require.False(t, b.hasID, "nothing happened: no new position")

	r.publish(t, 1, "bravo", "q1", "elsewhere")
	r.clock.fire(t)
	b = c.next(t)
	require.Equal(t, "keepalive", b.comment)
	require.True(t, b.hasID)
	require.NotEqual(t, start, b.id)
	require.Equal(t, "0:-1.1:0", b.id)
	require.Empty(t, b.event, "an id without data dispatches nothing")
}

func TestClientsWaitForTheHubToStart(t *testing.T) {
	r := newRig(t, Config{}, false)
	c := r.connect(t, "agent", "")
	require.Equal(t, http.StatusOK, c.resp.StatusCode)
	r.clock.fire(t)
	require.Equal(t, "keepalive", c.next(t).comment)
	r.hub.begin(map[int]int64{0: 4})
	_, start := c.ready(t)
	require.Equal(t, "0:3", start)
}

func TestStopEndsStreams(t *testing.T) {
	r := newRig(t, Config{}, true)
	c := r.connect(t, "agent", "")
	c.ready(t)
	r.hub.stop()
	c.ended(t)
	require.Error(t, r.hub.Ready(context.Background()))
	r.connect(t, "agent", "").ended(t)
}

func TestLeavingClientIsForgotten(t *testing.T) {
	r := newRig(t, Config{}, true)
	c := r.connect(t, "agent", "")
	c.ready(t)
	c.cancel()
	testkit.Eventually(t, wait, func() bool {
		r.hub.mu.Lock()
		defer r.hub.mu.Unlock()
		return r.hub.clients == 0 && len(r.hub.subs) == 0
	}, "the client is still subscribed")
}

func TestServerShutdownEndsStreams(t *testing.T) {
	r := newRig(t, Config{}, true)
	c := r.connect(t, "agent", "")
	c.ready(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	// Shutdown waits for requests to end: it returns in time only if the
	// stream ends by itself.
	require.NoError(t, r.srv.Config.Shutdown(ctx))
	c.ended(t)
}

func TestEventsNoClientCanBeSentStillMoveThePosition(t *testing.T) {
	r := newRig(t, Config{}, true)
	c := r.connect(t, "supervisor", "")
	c.ready(t)
	for _, m := range []kafka.Message{
		{Value: []byte(`{}`)}, // not a CloudEvent
		func() kafka.Message { // no conversation: nobody can be shown to see it
			ev, err := events.New(events.TypeConversationMessage, "test", "acme", time.Now(), map[string]any{"marker": "x"})
			require.NoError(t, err)
			return ev.Message(context.Background(), events.TopicConversations, nil)
		}(),
		func() kafka.Message { // no tenant
			ev, err := events.New(events.TypeConversationMessage, "test", "", time.Now(), map[string]any{"conversation": map[string]any{}})
			require.NoError(t, err)
			return ev.Message(context.Background(), events.TopicConversations, nil)
		}(),
	} {
		m.Offset = r.next[0]
		r.next[0]++
		r.hub.deliver(context.Background(), 0, m)
	}
	r.publish(t, 0, "acme", "q1", "good")
	got := c.until(t, "good")
	require.Len(t, got, 1)
	require.Equal(t, "0:3.1:-1", got[0].id)
}

// notify delivers a notification to user of tenant about a conversation
// in queue, on partition; marker names it in its data.
func (r *rig) notify(t *testing.T, partition int, tenant, queue, user, marker string) {
	t.Helper()
	conv := map[string]any{"id": "c-" + marker, "queue_id": queue, "assignee_ids": []string{}}
	data := map[string]any{"marker": marker, "conversation": conv}
	if user != "" {
		data["recipient_id"] = user
	}
	ev, err := events.New(events.TypeNotification, "test", tenant, time.Now(), data)
	require.NoError(t, err)
	m := ev.Message(context.Background(), events.TopicConversations, []byte("k"))
	m.Offset = r.next[partition]
	r.next[partition]++
	r.hub.deliver(context.Background(), partition, m)
}

func TestNotificationsGoToTheirUserOnly(t *testing.T) {
	r := newRig(t, Config{}, true)
	agent, sup, stranger := r.connect(t, "agent", ""), r.connect(t, "supervisor", ""), r.connect(t, "stranger", "")
	for _, c := range []*client{agent, sup, stranger} {
		c.ready(t)
	}
	r.notify(t, 0, "acme", "q1", "u1", "for-agent")
	r.notify(t, 1, "acme", "q2", "u1", "for-agent-out-of-sight")
	r.notify(t, 0, "acme", "q1", "u2", "for-supervisor")
	r.notify(t, 1, "acme", "q1", "", "for-nobody")
	r.notify(t, 0, "acme", "q1", "u3", "for-u3-of-another-tenant")
	r.publish(t, 0, "acme", "q1", "end")
	r.notify(t, 1, "bravo", "q1", "u3", "for-stranger")

	require.Equal(t, []string{"for-agent", "for-agent-out-of-sight", "end"}, markers(agent.until(t, "end")))
	require.Equal(t, []string{"for-supervisor", "end"}, markers(sup.until(t, "end")))
	require.Equal(t, []string{"for-stranger"}, markers(stranger.until(t, "for-stranger")))
}
