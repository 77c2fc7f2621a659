package main_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
	"github.com/switchboard-oss/switchboard/services/inbox"
	"github.com/switchboard-oss/switchboard/services/router"
	"github.com/switchboard-oss/switchboard/services/scheduler"
)

// meshProc is one process of a split deployment: its target and address
// stay, its runs (the last is the current one) come and go.
type meshProc struct {
	name, targets, addr string

	mu   sync.Mutex
	runs []*testkit.Node
}

func (p *meshProc) current() *testkit.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runs[len(p.runs)-1]
}

func (p *meshProc) all() []*testkit.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.runs)
}

// errorLines returns the error-level lines of a process's JSON logs.
func errorLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return out
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// statusOf answers the status of GET url, 0 when the request failed.
func statusOf(client *http.Client, url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// groupLag returns, per partition of topic, the group's committed offset
// (0 when none) and the partition's end offset.
func groupLag(ctx context.Context, client *kafka.Client, group, topic string) (committed, ends map[int]int64, err error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, nil, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	var parts []int
	var reqs []kafka.OffsetRequest
	for _, tp := range meta.Topics {
		for _, p := range tp.Partitions {
			parts = append(parts, p.ID)
			reqs = append(reqs, kafka.LastOffsetOf(p.ID))
		}
	}
	fetched, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, nil, fmt.Errorf("committed offsets of %s on %s: %w", group, topic, err)
	}
	listed, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	committed, ends = map[int]int64{}, map[int]int64{}
	for _, p := range fetched.Topics[topic] {
		committed[p.Partition] = max(0, p.CommittedOffset)
	}
	for _, p := range listed.Topics[topic] {
		ends[p.Partition] = p.LastOffset
	}
	return committed, ends, nil
}

// inboundBelow returns the external ids of the inbound messages at offsets
// below upTo, per partition.
func inboundBelow(ctx context.Context, t *testing.T, brokers []string, upTo map[int]int64) (map[string]bool, error) {
	ids := map[string]bool{}
	for p, end := range upTo {
		if end == 0 {
			continue
		}
		r := testkit.KafkaReader(t, kafka.ReaderConfig{Brokers: brokers, Topic: events.TopicInbound, Partition: p, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
		err := func() error {
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return fmt.Errorf("read %s[%d]: %w", events.TopicInbound, p, err)
				}
				ev, _, err := events.FromMessage(ctx, m)
				if err != nil {
					return fmt.Errorf("decode %s[%d]@%d: %w", events.TopicInbound, p, m.Offset, err)
				}
				var msg events.MessageReceived
				if err := ev.Decode(&msg); err != nil {
					return fmt.Errorf("decode %s[%d]@%d: %w", events.TopicInbound, p, m.Offset, err)
				}
				ids[msg.ExternalID] = true
				if m.Offset >= end-1 {
					return nil
				}
			}
		}()
		if err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// drainStreamEnd is how an agent's event stream ended.
type drainStreamEnd struct {
	events int
	err    error
}

// drainStream opens GET /v1/stream, as an agent's browser does, and reads
// it in the background until it ends.
func drainStream(t *testing.T, base, token string) <-chan drainStreamEnd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := make(chan drainStreamEnd, 1)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		var end drainStreamEnd
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "event:") {
				end.events++
			}
		}
		end.err = sc.Err()
		out <- end
	}()
	return out
}

// TestDrainUnderLoad runs Switchboard split as a deployment runs it: an
// inbox, two chat replicas taking the webhooks, a router and a scheduler,
// each a process of its own, on one Kafka broker (in this process), one
// database and one Redis database. While a sender posts 2,000 signed chat
// messages at a steady pace (500 conversations, each acknowledged by an
// automatic message of the scheduler), each process in turn gets SIGTERM,
// as Kubernetes sends it, and is started again once it has exited:
//
//   - a chat replica answers 503 on /readyz while /healthz still answers,
//     until it stops; the sender, like a chat platform behind a load
//     balancer, sends what was refused to the other replica;
//   - the inbox finishes and commits the batch in hand: once it has exited,
//     the messages stored are exactly those below its committed offsets;
//     an agent's open event stream does not hold it up;
//   - the router and the scheduler stop and come back.
//
// Every process exits with status 0 and logs no error. In the end every
// message is acknowledged and stored exactly once, nothing else is stored,
// every conversation got one acknowledgement, and no consumer group lags.
func TestDrainUnderLoad(t *testing.T) {
	const (
		total   = 2000
		perConv = 4 // messages per chat session
		pace    = 12 * time.Millisecond
		senders = 8
	)
	began := time.Now()
	ctx := context.Background()
	dbURL := testkit.DatabaseURL(t)
	brokers := testkit.Kafka(t)
	// A Redis database of its own; keys are per tenant, so none is flushed.
	redisURL := "redis://127.0.0.1:6379/12"
	env := append(testkit.KafkaEnv(brokers), "SB_REDIS_URL="+redisURL)
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	dataDir := t.TempDir()
	args := []string{"-log.level=info", "-kafka.consumer.session-timeout=6s", "-http.shutdown-delay=1s"}

	newProc := func(name, targets string) *meshProc {
		addr, err := testkit.FreeAddr()
		require.NoError(t, err)
		return &meshProc{name: name, targets: targets, addr: addr}
	}
	inboxP := newProc("inbox", "inbox")
	chatA, chatB := newProc("chat-a", "chat"), newProc("chat-b", "chat")
	routerP := newProc("router", "router")
	schedP := newProc("scheduler", "scheduler")
	procs := []*meshProc{inboxP, chatA, chatB, routerP, schedP}
	start := func(p *meshProc) error {
		sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		defer cancel()
		n, err := testkit.StartNode(sctx, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: dataDir, Addr: p.addr,
			Targets: p.targets, Env: env, Args: args})
		if err != nil {
			return fmt.Errorf("start %s: %w", p.name, err)
		}
		p.mu.Lock()
		p.runs = append(p.runs, n)
		p.mu.Unlock()
		return nil
	}
	t.Cleanup(func() {
		for _, p := range procs {
			for i, n := range p.all() {
				n.Kill()
				if t.Failed() {
					t.Logf("%s, run %d:\n%s", p.name, i+1, lastLines(n.Logs(), 60))
				}
			}
		}
	})
	// The inbox first: it announces the chat channel the replicas wait for.
	require.NoError(t, start(inboxP))
	startErrs := make([]error, len(procs))
	parallel(len(procs)-1, len(procs)-1, func(i int) { startErrs[i] = start(procs[i+1]) })
	require.NoError(t, errors.Join(startErrs...))

	db, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	admin := b.APIToken.Token
	mustAPI(t, http.StatusOK, http.MethodPut, "http://"+inboxP.addr+"/v1/admin/automation", admin, map[string]any{"channels": map[string]bool{"chat": true},
		"acknowledgement": map[string]string{"body": "Merci, nous avons bien reçu votre message."}}, nil)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	// Warm up until the scheduler acknowledges: it knows the settings.
	for i := 0; ; i++ {
		require.Less(t, i, 60, "the scheduler never acknowledged a warm-up conversation")
		chatSay(t, client, "http://"+chatA.addr, b, fmt.Sprintf("warm-%d", i), fmt.Sprintf("warm-%d", i), "Bonjour", nil)
		var acks int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM inbox.messages WHERE direction = 'outbound' AND automatic`).Scan(&acks))
		if acks > 0 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("mesh up and warm after %s", time.Since(began).Round(time.Millisecond))

	// The sender: message i goes to replica i%2, and when refused to the
	// other one, and so on, a little later.
	var (
		acked     = make([]atomic.Bool, total)
		ackN      atomic.Int64
		refusedMu sync.Mutex
		refused   = map[string]int{}
		notAcked  []int
		stopSend  atomic.Bool
	)
	t.Cleanup(func() { stopSend.Store(true) })
	refuse := func(reason string) {
		refusedMu.Lock()
		refused[reason]++
		refusedMu.Unlock()
	}
	replicas := []*meshProc{chatA, chatB}
	send := func(i int) {
		body := []byte(fmt.Sprintf(`{"message_id":"drain-%04d","session_id":"s-%03d","user":{"id":"u-%03d"},"text":"message %d"}`, i, i/perConv, i/perConv, i))
		for attempt := 0; attempt < 100 && !stopSend.Load(); attempt++ {
			if attempt > 0 {
				time.Sleep(20 * time.Millisecond)
			}
			req, err := testkit.ChatRequest("http://"+replicas[(i+attempt)%2].addr, b, body, time.Now())
			if err != nil {
				refuse("request: " + err.Error())
				continue
			}
			resp, err := client.Do(req)
			switch {
			case errors.Is(err, syscall.ECONNREFUSED):
				refuse("connection refused")
				continue
			case err != nil:
				refuse("transport error")
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				acked[i].Store(true)
				ackN.Add(1)
				return
			}
			refuse(fmt.Sprintf("status %d", resp.StatusCode))
		}
		refusedMu.Lock()
		notAcked = append(notAcked, i)
		refusedMu.Unlock()
	}
	sent := make(chan struct{})
	t0 := time.Now()
	go func() {
		defer close(sent)
		parallel(total, senders, func(i int) {
			if stopSend.Load() {
				return
			}
			time.Sleep(time.Until(t0.Add(time.Duration(i) * pace)))
			send(i)
		})
	}()

	// observe polls a chat replica's /readyz and /healthz until it exits
	// and reports how often /readyz said 503 while /healthz said 200.
	observe := func(n *testkit.Node) <-chan int {
		out := make(chan int, 1)
		probe := &http.Client{Timeout: time.Second}
		go func() {
			seen := 0
			defer func() { out <- seen }()
			for range 3000 { // 60 s at most
				select {
				case <-n.Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
				if statusOf(probe, n.Base()+"/readyz") == http.StatusServiceUnavailable && statusOf(probe, n.Base()+"/healthz") == http.StatusOK {
					seen++
				}
			}
		}()
		return out
	}
	inboxCheck := func() {
		// Nothing handled is left uncommitted, nothing committed is missing.
		kc := testkit.KafkaClient(t, brokers)
		committed, _, err := groupLag(ctx, kc, inbox.ConsumerGroup, events.TopicInbound)
		require.NoError(t, err)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		below, err := inboundBelow(rctx, t, brokers, committed)
		require.NoError(t, err)
		rows, err := db.Query(ctx, `SELECT external_id FROM inbox.messages WHERE direction = 'inbound'`)
		require.NoError(t, err)
		stored := map[string]bool{}
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			stored[id] = true
		}
		require.NoError(t, rows.Err())
		var uncommitted, lost []string
		for id := range stored {
			if !below[id] {
				uncommitted = append(uncommitted, id)
			}
		}
		for id := range below {
			if !stored[id] {
				lost = append(lost, id)
			}
		}
		sort.Strings(uncommitted)
		sort.Strings(lost)
		require.Empty(t, uncommitted, "stored by the inbox but not committed when it exited")
		require.Empty(t, lost, "committed by the inbox but not stored")
		t.Logf("the inbox exited with %d messages stored, each below its committed offsets %v", len(stored), committed)
	}
	drain := func(p *meshProc, threshold int) {
		for k := 0; ackN.Load() < int64(threshold) && k < 3000; k++ {
			time.Sleep(20 * time.Millisecond)
		}
		n := p.current()
		var seen <-chan int
		if strings.Contains(p.targets, "chat") {
			seen = observe(n)
		}
		var streamed <-chan drainStreamEnd
		if p == inboxP {
			streamed = drainStream(t, n.Base(), admin)
		}
		atAck := ackN.Load()
		termAt := time.Now()
		require.NoError(t, n.Terminate())
		select {
		case <-n.Done():
		case <-time.After(60 * time.Second):
			t.Fatalf("%s did not exit within 60 s of SIGTERM", p.name)
		}
		took := time.Since(termAt)
		require.Equal(t, 0, n.ExitCode(), "%s exit status after SIGTERM", p.name)
		require.Empty(t, errorLines(n.Logs()), "%s logged errors while draining", p.name)
		if seen != nil {
			require.Positive(t, <-seen, "%s: /readyz never answered 503 while /healthz answered before it exited", p.name)
		}
		if p == inboxP {
			select {
			case end := <-streamed:
				t.Logf("the agent's stream ended with the inbox (%d events, %v)", end.events, end.err)
			case <-time.After(10 * time.Second):
				t.Fatal("the agent's stream outlived the inbox")
			}
			inboxCheck()
		}
		require.NoError(t, start(p))
		t.Logf("%s: SIGTERM at %d acknowledged, exited 0 after %s, ready again after %s", p.name, atAck, took.Round(time.Millisecond),
			time.Since(termAt).Round(time.Millisecond))
	}
	drain(chatA, 250)
	drain(inboxP, 550)
	drain(routerP, 850)
	drain(schedP, 1100)
	drain(chatB, 1400)
	select {
	case <-sent:
	case <-time.After(2 * time.Minute):
		t.Fatal("the sender did not finish")
	}
	refusedMu.Lock()
	t.Logf("sent %d messages in %s; refused and sent again: %v", total, time.Since(t0).Round(time.Millisecond), refused)
	require.Empty(t, notAcked, "messages never acknowledged")
	for reason := range refused {
		require.True(t, reason == "connection refused" || reason == "transport error" || reason == fmt.Sprint("status ", http.StatusServiceUnavailable),
			"a webhook was refused with %s (%d times)", reason, refused[reason])
	}
	refusedMu.Unlock()

	// Every message acknowledged, stored exactly once, nothing else.
	counts := map[string]int{}
	testkit.Eventually(t, 60*time.Second, func() bool {
		rows, err := db.Query(ctx, `SELECT external_id, count(*) FROM inbox.messages WHERE direction = 'inbound' AND external_id LIKE 'drain-%' GROUP BY 1`)
		require.NoError(t, err)
		counts = map[string]int{}
		for rows.Next() {
			var id string
			var n int
			require.NoError(t, rows.Scan(&id, &n))
			counts[id] = n
		}
		require.NoError(t, rows.Err())
		return len(counts) == total
	}, "stored %d distinct messages of %d", len(counts), total)
	for i := range total {
		id := fmt.Sprintf("drain-%04d", i)
		require.True(t, acked[i].Load(), "message %s was never acknowledged", id)
		require.Equal(t, 1, counts[id], "message %s stored %d times", id, counts[id])
	}
	var strangers int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM inbox.messages WHERE direction = 'inbound' AND external_id NOT LIKE 'drain-%' AND external_id NOT LIKE 'warm-%'`).Scan(&strangers))
	require.Zero(t, strangers, "inbound messages stored that were never sent")
	// Every conversation, one acknowledgement.
	testkit.Eventually(t, 60*time.Second, func() bool {
		var convs, once, more int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE n = 1), count(*) FILTER (WHERE n > 1) FROM (
			SELECT c.id, (SELECT count(*) FROM inbox.messages m WHERE m.conversation_id = c.id AND m.direction = 'outbound' AND m.automatic) AS n
			FROM inbox.conversations c WHERE c.thread_key LIKE 's-%') x`).Scan(&convs, &once, &more))
		require.Zero(t, more, "conversations acknowledged more than once")
		require.LessOrEqual(t, convs, total/perConv)
		return convs == total/perConv && once == convs
	}, "not every conversation was acknowledged once")
	// Nothing left behind: the outbox relayed, no consumer group lags.
	kc := testkit.KafkaClient(t, brokers)
	groups := []struct{ group, topic string }{
		{inbox.ConsumerGroup, events.TopicInbound},
		{router.ConversationsGroup, events.TopicConversations},
		{scheduler.ConversationsGroup, events.TopicConversations},
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		var outbox int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM inbox.outbox`).Scan(&outbox))
		if outbox > 0 {
			return false
		}
		for _, g := range groups {
			committed, ends, err := groupLag(ctx, kc, g.group, g.topic)
			require.NoError(t, err)
			for p, end := range ends {
				if committed[p] < end {
					return false
				}
			}
		}
		return true
	}, "the inbox outbox or a consumer group did not catch up")

	// Last, every process stops gracefully at once, as a rollout of the
	// whole deployment would.
	for _, p := range procs {
		require.NoError(t, p.current().Terminate())
	}
	for _, p := range procs {
		n := p.current()
		select {
		case <-n.Done():
		case <-time.After(60 * time.Second):
			t.Fatalf("%s did not exit within 60 s of SIGTERM", p.name)
		}
		require.Equal(t, 0, n.ExitCode(), "%s exit status after SIGTERM", p.name)
	}
	for _, p := range procs {
		for i, n := range p.all() {
			var buf bytes.Buffer
			for _, l := range errorLines(n.Logs()) {
				buf.WriteString(l + "\n")
			}
			require.Empty(t, buf.String(), "%s, run %d, logged errors", p.name, i+1)
		}
	}
	t.Logf("done in %s", time.Since(began).Round(time.Millisecond))
}

// TestDrainWhileStarting: SIGTERM while the components start (their
// schema migrations, the embedded broker) is a stop, not a failure: the
// process exits with status 0 and logs no error.
func TestDrainWhileStarting(t *testing.T) {
	brokers := testkit.Kafka(t)
	for _, targets := range []string{"all", "inbox,router,scheduler,chat"} {
		t.Run(targets, func(t *testing.T) {
			dbURL := testkit.DatabaseURL(t) // empty: every migration runs
			cmd := exec.Command(binary, "-target="+targets, "-data-dir", t.TempDir(), "-http.addr", "127.0.0.1:0", "-log.level=info")
			cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "SB_KAFKA_BROKERS=", "KAFKA_BROKERS=", "SB_REDIS_URL=", "REDIS_URL=")
			if targets != "all" {
				cmd.Env = append(append(cmd.Env, testkit.KafkaEnv(brokers)...), "SB_REDIS_URL=redis://127.0.0.1:6379/12")
			}
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			var logs strings.Builder
			sc := bufio.NewScanner(stderr)
			sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
			signalled := false
			for sc.Scan() {
				logs.WriteString(sc.Text() + "\n")
				if !signalled && strings.Contains(sc.Text(), `"msg":"starting"`) {
					require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
					signalled = true
				}
			}
			err = cmd.Wait()
			require.True(t, signalled, "the process never said it was starting:\n%s", logs.String())
			require.NoError(t, err, "exit after SIGTERM while starting:\n%s", logs.String())
			require.Empty(t, errorLines(logs.String()), "errors logged after SIGTERM while starting")
			t.Logf("%s: %s", targets, lastLines(logs.String(), 3))
		})
	}
}
