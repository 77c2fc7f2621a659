package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/webhook"
)

// ChatOutResult is one run of the chatout scenario: agents' replies
// delivered to the chat channel's endpoint, a receiver in the bench
// process on 127.0.0.1. Durations are in milliseconds.
type ChatOutResult struct {
	Conversations int `json:"conversations"`
	// The throughput phase: Replies sent through the API as fast as they
	// are answered, at concurrency -c.
	Replies int `json:"throughput_replies"`
	// DeliveredPerSecond is Replies over the time from the first reply
	// sent to the API to the last 2xx of the receiver.
	DeliveredPerSecond float64 `json:"throughput_delivered_per_second"`
	// Reply* is the time from a reply's API answer to the receiver's 2xx
	// of its delivery, with the machine saturated by the API load.
	ReplyP50 float64 `json:"throughput_reply_to_delivered_p50_ms"`
	ReplyP99 float64 `json:"throughput_reply_to_delivered_p99_ms"`
	// API* is the time of the reply request itself.
	APIP50 float64 `json:"throughput_reply_api_p50_ms"`
	APIP99 float64 `json:"throughput_reply_api_p99_ms"`

	// The paced phase: PacedRate replies per second, each to a
	// conversation of its own, sent on schedule whatever the answers.
	PacedRate    int     `json:"paced_rate"`
	PacedReplies int     `json:"paced_replies"`
	PacedP50     float64 `json:"paced_reply_to_delivered_p50_ms"`
	PacedP99     float64 `json:"paced_reply_to_delivered_p99_ms"`
	PacedMax     float64 `json:"paced_reply_to_delivered_max_ms"`
	PacedAPIP99  float64 `json:"paced_reply_api_p99_ms"`

	// Duplicates counts deliveries of a reply beyond its first; Unsigned
	// those whose signature did not verify; Lost the replies never
	// delivered.
	Duplicates int `json:"duplicates"`
	Unsigned   int `json:"unsigned"`
	Lost       int `json:"lost"`
}

// chatOutReceiver is the tenant's chat endpoint: it verifies each
// delivery's signature and notes when it answered 2xx to each reply,
// keyed by the reply's text.
type chatOutReceiver struct {
	mu        sync.Mutex
	secret    []byte
	delivered map[string]time.Time
	dups      int
	unsigned  int
}

func (rc *chatOutReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var env struct {
		Data struct {
			Text string `json:"text"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &env)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if webhook.Verify([][]byte{rc.secret}, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute) != nil {
		rc.unsigned++
	}
	if _, ok := rc.delivered[env.Data.Text]; ok {
		rc.dups++
	} else {
		rc.delivered[env.Data.Text] = time.Now()
	}
	w.WriteHeader(http.StatusNoContent)
}

// chatOutScenario runs the chatout scenario and prints it.
func chatOutScenario(ctx context.Context, o options, w io.Writer, report map[string]any) error {
	if o.chatOutConversations < 1 || o.chatOutN < o.chatOutConversations || o.concurrency < 1 || o.chatOutRate < 1 || o.chatOutDuration < time.Second {
		return fmt.Errorf("-chatout-conversations, -chatout-rate and -c must be at least 1, -chatout-n at least -chatout-conversations and -chatout-duration at least 1s, got %d, %d, %d, %d and %s",
			o.chatOutConversations, o.chatOutRate, o.concurrency, o.chatOutN, o.chatOutDuration)
	}
	paced := int(float64(o.chatOutRate) * o.chatOutDuration.Seconds())
	fmt.Fprintf(w, "\nchatout scenario: %d agent replies in %d chat conversations through the API at concurrency %d as fast as answered, then %d/s for %s (%d replies, a conversation each) paced, delivered to a local endpoint, %d runs\n\n",
		o.chatOutN, o.chatOutConversations, o.concurrency, o.chatOutRate, o.chatOutDuration, paced, o.chatOutRuns)
	var results []ChatOutResult
	for r := 1; r <= o.chatOutRuns; r++ {
		res, err := chatOutRun(ctx, o)
		if err != nil {
			return fmt.Errorf("chatout scenario, run %d: %w", r, err)
		}
		fmt.Fprintf(w, "run %d: %.0f replies/s delivered, reply answer -> endpoint 2xx p50 %.1f ms p99 %.1f ms, reply API p50 %.1f ms p99 %.1f ms | paced %d/s: reply answer -> endpoint 2xx p50 %.1f ms p99 %.1f ms max %.1f ms, reply API p99 %.1f ms | duplicates %d, unsigned %d, lost %d\n",
			r, res.DeliveredPerSecond, res.ReplyP50, res.ReplyP99, res.APIP50, res.APIP99,
			res.PacedRate, res.PacedP50, res.PacedP99, res.PacedMax, res.PacedAPIP99, res.Duplicates, res.Unsigned, res.Lost)
		results = append(results, res)
	}
	med := medianOver(results)
	m := ChatOutResult{Conversations: o.chatOutConversations, Replies: o.chatOutN, PacedRate: o.chatOutRate, PacedReplies: paced,
		DeliveredPerSecond: med(func(r ChatOutResult) float64 { return r.DeliveredPerSecond }),
		ReplyP50:           med(func(r ChatOutResult) float64 { return r.ReplyP50 }),
		ReplyP99:           med(func(r ChatOutResult) float64 { return r.ReplyP99 }),
		APIP50:             med(func(r ChatOutResult) float64 { return r.APIP50 }),
		APIP99:             med(func(r ChatOutResult) float64 { return r.APIP99 }),
		PacedP50:           med(func(r ChatOutResult) float64 { return r.PacedP50 }),
		PacedP99:           med(func(r ChatOutResult) float64 { return r.PacedP99 }),
		PacedMax:           med(func(r ChatOutResult) float64 { return r.PacedMax }),
		PacedAPIP99:        med(func(r ChatOutResult) float64 { return r.PacedAPIP99 }),
	}
	for _, r := range results {
		m.Duplicates += r.Duplicates
		m.Unsigned += r.Unsigned
		m.Lost += r.Lost
	}
	fmt.Fprintf(w, "\nmedians over %d runs\n", len(results))
	fmt.Fprintf(w, "  chatout  replies delivered per second, c=%-3d        %10.0f /s\n", o.concurrency, m.DeliveredPerSecond)
	fmt.Fprintf(w, "  chatout  reply answer -> endpoint 2xx, c=%-3d p99   %10.1f ms\n", o.concurrency, m.ReplyP99)
	fmt.Fprintf(w, "  chatout  reply answer -> endpoint 2xx, %d/s p50    %10.1f ms\n", o.chatOutRate, m.PacedP50)
	fmt.Fprintf(w, "  chatout  reply answer -> endpoint 2xx, %d/s p99    %10.1f ms\n", o.chatOutRate, m.PacedP99)
	fmt.Fprintf(w, "  chatout  duplicates, unsigned, lost (all runs)     %d, %d, %d\n", m.Duplicates, m.Unsigned, m.Lost)
	report["chatout"] = map[string]any{"runs": results, "median": m}
	return nil
}

// chatOutBench is one run's node, client and agent.
type chatOutBench struct {
	ctx    context.Context
	base   string
	client *http.Client
	agent  string
}

// call sends body (nil: none) as JSON and fails unless the answer is
// want; out (nil: ignored) gets the answer.
func (cb *chatOutBench) call(want int, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(cb.ctx, method, cb.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cb.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// reply has the agent answer conversation conv with text (taking it back
// first when again) and returns when the answer came and how long it took.
func (cb *chatOutBench) reply(conv, text string, again bool) (time.Time, time.Duration, error) {
	if again {
		if err := cb.call(http.StatusOK, http.MethodPost, "/v1/conversations/"+conv+"/assign", cb.agent, nil, nil); err != nil {
			return time.Time{}, 0, err
		}
	}
	t0 := time.Now()
	if err := cb.call(http.StatusOK, http.MethodPost, "/v1/conversations/"+conv+"/reply", cb.agent, map[string]string{"text": text}, nil); err != nil {
		return time.Time{}, 0, err
	}
	at := time.Now()
	return at, at.Sub(t0), nil
}

// chatOutRun runs the scenario once on a fresh database: conversations
// by webhook, taken by an agent; then replies through the API, as fast as
// answered (each conversation's one after the other: the agent takes it
// back before each but the first), then paced.
func chatOutRun(ctx context.Context, o options) (ChatOutResult, error) {
	nPaced := int(float64(o.chatOutRate) * o.chatOutDuration.Seconds())
	res := ChatOutResult{Conversations: o.chatOutConversations, Replies: o.chatOutN, PacedRate: o.chatOutRate, PacedReplies: nPaced}
	env, err := newRunEnv(ctx, o, "sbbench_chatout_")
	if err != nil {
		return res, err
	}
	defer env.close()
	rc := &chatOutReceiver{delivered: map[string]time.Time{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	node, err := env.start(ctx, o, o.addr, "-egress.allow=127.0.0.1/32", "-egress.allow-http")
	if err != nil {
		return res, err
	}
	defer node.Stop()
	b := env.boot
	cb := &chatOutBench{ctx: ctx, base: node.Base(), client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 30 * time.Second}}

	// The endpoint, an agent and a queue.
	admin := b.APIToken.Token
	var ch struct {
		Outbound struct {
			Secret string `json:"secret"`
		} `json:"outbound"`
	}
	if err := cb.call(http.StatusOK, http.MethodPatch, "/v1/admin/chat-channels/"+b.ChatChannel.ID, admin,
		map[string]any{"outbound": map[string]any{"url": srv.URL + "/switchboard"}}, &ch); err != nil {
		return res, err
	}
	rc.mu.Lock()
	rc.secret = []byte(ch.Outbound.Secret)
	rc.mu.Unlock()
	var queue struct {
		ID string `json:"id"`
	}
	if err := cb.call(http.StatusCreated, http.MethodPost, "/v1/admin/queues", admin, map[string]string{"name": "Support"}, &queue); err != nil {
		return res, err
	}
	if err := cb.call(http.StatusCreated, http.MethodPost, "/v1/admin/users", admin, map[string]any{"email": "agent@bench.test", "name": "Agent",
		"role": "agent", "capacity": 100, "queue_ids": []string{queue.ID}, "password": "correct horse battery"}, nil); err != nil {
		return res, err
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := cb.call(http.StatusOK, http.MethodPost, "/v1/auth/login", "", map[string]string{"tenant_id": b.Tenant.ID, "email": "agent@bench.test",
		"password": "correct horse battery"}, &login); err != nil {
		return res, err
	}
	cb.agent = login.AccessToken

	// The conversations, by webhook, taken and routed by the agent: those
	// of the throughput phase, then one per paced reply.
	total := o.chatOutConversations + nPaced
	if err := waitChatLive(ctx, cb.client, node, b); err != nil {
		return res, err
	}
	sendChat(cb.client, node.Base(), b, "chatout", total, o.concurrency, 1)
	conn, err := pgx.Connect(ctx, env.dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(ctx)
	var convs []string
	err = poll(ctx, 2*time.Minute, 100*time.Millisecond, func() (bool, error) {
		rows, err := conn.Query(ctx, `SELECT id::text FROM inbox.conversations WHERE thread_key LIKE 'chatout-session-%' ORDER BY thread_key`)
		if err != nil {
			return false, err
		}
		convs, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return len(convs) == total, err
	})
	if errors.Is(err, errGaveUp) {
		return res, fmt.Errorf("%d of %d conversations stored", len(convs), total)
	}
	if err != nil {
		return res, err
	}
	if err := parallel(ctx, len(convs), o.concurrency, func(i int) error {
		if err := cb.call(http.StatusOK, http.MethodPost, "/v1/conversations/"+convs[i]+"/assign", cb.agent, nil, nil); err != nil {
			return err
		}
		return cb.call(http.StatusOK, http.MethodPost, "/v1/conversations/"+convs[i]+"/route", cb.agent, map[string]string{"queue_id": queue.ID}, nil)
	}); err != nil {
		return res, err
	}
	text := func(i int) string { return fmt.Sprintf("Réponse %d : votre commande est partie ce matin.", i) }

	// Throughput: worker k takes conversations k, k+c, ...; each
	// conversation's replies go one after the other.
	tconvs := convs[:o.chatOutConversations]
	perConv := (o.chatOutN + len(tconvs) - 1) / len(tconvs)
	answered := make([]time.Time, o.chatOutN+nPaced)
	apiTimes := make([]time.Duration, o.chatOutN+nPaced)
	workers := min(o.concurrency, len(tconvs))
	start := time.Now()
	if err := parallel(ctx, workers, workers, func(k int) error {
		for round := range perConv {
			for c := k; c < len(tconvs); c += workers {
				i := round*len(tconvs) + c
				if i >= o.chatOutN {
					continue
				}
				var err error
				if answered[i], apiTimes[i], err = cb.reply(tconvs[c], text(i), round > 0); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return res, err
	}
	lat, last, lost := rc.since(answered[:o.chatOutN], text, 0, 2*time.Minute)
	res.Lost += lost
	if len(lat) == 0 {
		return res, fmt.Errorf("no reply was delivered:\n%s", node.Logs())
	}
	res.ReplyP50, res.ReplyP99 = p50p99(lat)
	res.APIP50, res.APIP99 = p50p99(slices.Clone(apiTimes[:o.chatOutN]))
	res.DeliveredPerSecond = float64(len(lat)) / last.Sub(start).Seconds()

	// Paced: one reply per conversation, on schedule.
	pconvs := convs[o.chatOutConversations:]
	if err := paced(ctx, len(pconvs), o.chatOutRate, func(j int) error {
		i := o.chatOutN + j
		var err error
		answered[i], apiTimes[i], err = cb.reply(pconvs[j], text(i), false)
		return err
	}); err != nil {
		return res, err
	}
	lat, _, lost = rc.since(answered[o.chatOutN:], text, o.chatOutN, time.Minute)
	res.Lost += lost
	if len(lat) > 0 {
		res.PacedP50, res.PacedP99 = p50p99(lat)
		res.PacedMax = float64(lat[len(lat)-1]) / float64(time.Millisecond)
	}
	_, res.PacedAPIP99 = p50p99(slices.Clone(apiTimes[o.chatOutN:]))
	rc.mu.Lock()
	res.Duplicates, res.Unsigned = rc.dups, rc.unsigned
	rc.mu.Unlock()
	return res, nil
}

// since waits (at most limit) for the replies first, first+1, ... answered
// at the times of answered to be delivered, and returns the times from
// each answer to its delivery, sorted, when the last came, and how many
// never did.
func (rc *chatOutReceiver) since(answered []time.Time, text func(int) string, first int, limit time.Duration) ([]time.Duration, time.Time, int) {
	deadline := time.Now().Add(limit)
	for {
		rc.mu.Lock()
		n := 0
		for i := range answered {
			if _, ok := rc.delivered[text(first+i)]; ok {
				n++
			}
		}
		rc.mu.Unlock()
		if n == len(answered) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var lat []time.Duration
	var last time.Time
	lost := 0
	for i, a := range answered {
		at, ok := rc.delivered[text(first+i)]
		if !ok {
			lost++
			continue
		}
		lat = append(lat, at.Sub(a))
		if at.After(last) {
			last = at
		}
	}
	slices.Sort(lat)
	return lat, last, lost
}
