package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/bus"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/telemetry"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(n, workers int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// mustAPI is api that requires want.
func mustAPI(t *testing.T, want int, method, url, token string, body, out any) {
	t.Helper()
	if got := api(t, method, url, token, body, out); got != want {
		t.Fatalf("%s %s answered %d, want %d", method, url, got, want)
	}
}

// TestTimersSurviveKills drives more than 10,000 timers of every kind, all
// due within about a minute, through the inbox and the scheduler running as
// separate processes (on a Kafka broker and the Redis and PostgreSQL they
// share), kills the scheduler with SIGKILL twice while they fire and the
// inbox once, restarts each, and checks that every effect happened exactly
// once: each wake-up, expired offer, acknowledgement, waiting message,
// smart-close question, answer and close, and inactivity alert.
func TestTimersSurviveKills(t *testing.T) {
	// Conversations per kind; each has one timer, smart close waiting
	// first two (ask, then close).
	const (
		nWaiting    = 3000 // waiting message in new (the queue's)
		nDeferred   = 1500 // wake-up
		nOffered    = 1000 // offer expiry
		nClosing    = 1000 // smart close asked at once, no answer: close
		nWaitFirst  = 500  // smart close waiting first: ask, then close
		nAnswered   = 500  // smart close answered "non" during the kills
		nInactive   = 1000 // inactivity alert
		nAcknowledg = 2000 // acknowledgement of conversations started during the kills
	)
	dbURL := testkit.DatabaseURL(t)
	brokers := testkit.Kafka(t) // in this process: it outlives the killed ones
	redisURL := os.Getenv("SB_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = testkit.DefaultRedisURL
	}
	env := append(testkit.KafkaEnv(brokers), "SB_REDIS_URL="+redisURL)
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	inboxAddr, err := testkit.FreeAddr()
	require.NoError(t, err)
	schedAddr, err := testkit.FreeAddr()
	require.NoError(t, err)
	dataDir := t.TempDir()
	start := func(targets, addr string) *testkit.Node {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		n, err := testkit.StartNode(ctx, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: dataDir, Addr: addr, Targets: targets, Env: env,
			// A killed process's partitions go to its successor after 6 s
			// (Kafka's smallest session timeout), not 30.
			Args: []string{"-kafka.consumer.session-timeout=6s"}})
		require.NoError(t, err)
		return n
	}
	var nodesMu sync.Mutex
	var nodes []*testkit.Node
	keep := func(n *testkit.Node) *testkit.Node {
		nodesMu.Lock()
		defer nodesMu.Unlock()
		nodes = append(nodes, n)
		return n
	}
	t.Cleanup(func() {
		nodesMu.Lock()
		defer nodesMu.Unlock()
		for _, n := range nodes {
			n.Kill()
			if t.Failed() {
				t.Logf("switchboard output:\n%s", n.Logs())
			}
		}
	})
	inboxNode := keep(start("inbox,chat", inboxAddr))
	schedNode := keep(start("scheduler", schedAddr))
	base := "http://" + inboxAddr
	admin := b.APIToken.Token
	client := &http.Client{Timeout: 10 * time.Second}
	ctx := context.Background()
	db, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)

	// Queues, a waiting message (far off for now), an agent.
	type idOf struct {
		ID string `json:"id"`
	}
	var qWaiting, qInactive, qSupport, wm, agent idOf
	mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/queues", admin, map[string]string{"name": "Waiting"}, &qWaiting)
	mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/queues", admin, map[string]string{"name": "Inactive"}, &qInactive)
	mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/queues", admin, map[string]string{"name": "Support"}, &qSupport)
	mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/waiting-messages", admin, map[string]any{
		"name": "Patience", "subject": "Toujours en cours", "body": "Bonjour {{customer_name}}, nous revenons vers vous.", "hours": map[string]float64{"new": 10}}, &wm)
	smartTexts := map[string]any{"chat": map[string]string{"question": "Autre chose ?", "follow_up": "Dites-nous en plus."}}
	mustAPI(t, http.StatusOK, http.MethodPut, base+"/v1/admin/automation", admin, map[string]any{"channels": map[string]bool{"chat": true},
		"smart_close": map[string]any{"timeout_minutes": 600, "first_wait_minutes": 600, "texts": smartTexts}}, nil)
	mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/users", admin, map[string]any{"email": "ada@acme.test", "name": "Ada", "role": "agent",
		"capacity": 100, "queue_ids": []string{qWaiting.ID, qInactive.ID, qSupport.ID}, "password": "correct horse battery"}, &agent)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	mustAPI(t, http.StatusOK, http.MethodPost, base+"/v1/auth/login", "", map[string]string{"tenant_id": b.Tenant.ID, "email": "ada@acme.test", "password": "correct horse battery"}, &login)
	token := login.AccessToken

	// Conversations, one chat session each, named by kind.
	groups := []struct {
		prefix string
		n      int
	}{{"w", nWaiting}, {"d", nDeferred}, {"o", nOffered}, {"c", nClosing}, {"f", nWaitFirst}, {"k", nAnswered}, {"i", nInactive}}
	var sessions []string
	for _, g := range groups {
		for i := 0; i < g.n; i++ {
			sessions = append(sessions, fmt.Sprintf("%s-%d", g.prefix, i))
		}
	}
	parallel(len(sessions), 32, func(i int) {
		chatSay(t, client, base, b, "m-"+sessions[i], sessions[i], "Bonjour, "+sessions[i], nil)
	})
	ids := map[string]string{}
	testkit.Eventually(t, 2*time.Minute, func() bool {
		rows, err := db.Query(ctx, `SELECT thread_key, id::text FROM inbox.conversations`)
		require.NoError(t, err)
		for rows.Next() {
			var k, id string
			require.NoError(t, rows.Scan(&k, &id))
			ids[k] = id
		}
		require.NoError(t, rows.Err())
		return len(ids) == len(sessions)
	}, "not every conversation was stored")
	conv := func(session string) string { return base + "/v1/conversations/" + ids[session] }
	each := func(prefix string, n int, fn func(session string)) {
		parallel(n, 32, func(i int) { fn(fmt.Sprintf("%s-%d", prefix, i)) })
	}
	each("w", nWaiting, func(s string) {
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/route", admin, map[string]string{"queue_id": qWaiting.ID}, nil)
	})
	each("i", nInactive, func(s string) {
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/assign", token, nil, nil)
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/route", token, map[string]string{"queue_id": qInactive.ID}, nil)
	})
	each("d", nDeferred, func(s string) { mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/assign", token, nil, nil) })
	answered := func(s string) {
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/assign", token, nil, nil)
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/route", token, map[string]string{"queue_id": qSupport.ID}, nil)
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/reply", token, map[string]string{"text": "Voilà."}, nil)
	}
	each("c", nClosing, func(s string) {
		answered(s)
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/complete", token, map[string]any{"disposition": "solved", "smart_close": true}, nil)
	})
	each("f", nWaitFirst, func(s string) {
		answered(s)
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/complete", token, map[string]any{"disposition": "solved", "smart_close": true, "smart_close_wait": true}, nil)
	})
	each("k", nAnswered, answered)

	// Everything now comes due within a minute of t0: settings moved so,
	// deferrals and offers set so.
	t0 := time.Now().Add(20 * time.Second)
	earliest := func(sql string, args ...any) time.Time {
		var at time.Time
		require.NoError(t, db.QueryRow(ctx, sql, args...).Scan(&at))
		return at
	}
	minutesUntil := func(from time.Time, at time.Time) float64 { return at.Sub(from).Minutes() }
	waitSince := earliest(`SELECT min(state_since) FROM inbox.conversations WHERE thread_key LIKE 'w-%'`)
	askedSince := earliest(`SELECT min(closing_asked_at) FROM inbox.conversations WHERE thread_key LIKE 'c-%'`)
	firstSince := earliest(`SELECT min(state_since) FROM inbox.conversations WHERE thread_key LIKE 'f-%'`)
	activeSince := earliest(`SELECT min(updated_at) FROM inbox.conversations WHERE thread_key LIKE 'i-%'`)
	timeout := minutesUntil(askedSince, t0.Add(5*time.Second))
	mustAPI(t, http.StatusOK, http.MethodPut, base+"/v1/admin/automation", admin, map[string]any{"channels": map[string]bool{"chat": true},
		"acknowledgement": map[string]string{"body": "Merci {{customer_name}}, nous avons bien reçu votre message."},
		"smart_close":     map[string]any{"timeout_minutes": timeout, "first_wait_minutes": minutesUntil(firstSince, t0.Add(10*time.Second)), "texts": smartTexts}}, nil)
	mustAPI(t, http.StatusOK, http.MethodPatch, base+"/v1/admin/waiting-messages/"+wm.ID, admin, map[string]any{
		"hours": map[string]float64{"new": t0.Add(10 * time.Second).Sub(waitSince).Hours()}}, nil)
	mustAPI(t, http.StatusOK, http.MethodPut, base+"/v1/admin/queues/"+qWaiting.ID+"/automation", admin, map[string]any{"waiting_message_id": wm.ID}, nil)
	mustAPI(t, http.StatusOK, http.MethodPut, base+"/v1/admin/queues/"+qInactive.ID+"/automation", admin, map[string]any{
		"inactivity_minutes": minutesUntil(activeSince, t0.Add(10*time.Second))}, nil)
	each("d", nDeferred, func(s string) {
		var i int
		fmt.Sscanf(s, "d-%d", &i)
		until := t0.Add(5*time.Second + time.Duration(i%300)*100*time.Millisecond).UTC().Format(time.RFC3339Nano)
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/defer", token, map[string]string{"until": until}, nil)
	})
	producer, err := bus.NewProducer(testkit.BusConfig(brokers), telemetry.Discard())
	require.NoError(t, err)
	t.Cleanup(func() { _ = producer.Close() })
	// The inbox applies an offer only to an agent with room for it: the
	// offers go to agents of their own, 50 each (capacity 100 at most).
	offerees := make([]idOf, (nOffered+49)/50)
	for i := range offerees {
		mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/users", admin, map[string]any{"email": fmt.Sprintf("offeree-%d@acme.test", i),
			"name": fmt.Sprintf("Offeree %d", i), "role": "agent", "capacity": 100}, &offerees[i])
	}
	each("o", nOffered, func(s string) {
		var i int
		fmt.Sscanf(s, "o-%d", &i)
		var stateVersion int64
		var key string
		require.NoError(t, db.QueryRow(ctx, `SELECT state_version, tenant_id::text || '/' || channel || '/' || channel_account_id::text || '/' || thread_key
			FROM inbox.conversations WHERE id = $1`, ids[s]).Scan(&stateVersion, &key))
		ev, err := events.NewWithID("offer/"+ids[s], events.TypeInboxCommand, "switchboard/router", b.Tenant.ID, time.Now(), events.InboxCommand{
			TenantID: b.Tenant.ID, ConversationID: ids[s], Kind: events.CommandOffer, Expect: events.Expectation{State: "new", StateVersion: stateVersion},
			Offer: &events.Offer{UserID: offerees[i%len(offerees)].ID, ExpiresAt: t0.Add(5*time.Second + time.Duration(i%300)*100*time.Millisecond)}})
		require.NoError(t, err)
		require.NoError(t, producer.Publish(ctx, events.TopicCommands, []byte(key), ev))
	})
	each("k", nAnswered, func(s string) {
		mustAPI(t, http.StatusOK, http.MethodPost, conv(s)+"/complete", token, map[string]any{"disposition": "solved", "smart_close": true}, nil)
	})
	t.Logf("set up %d conversations; timers come due from %s", len(sessions), time.Until(t0).Round(time.Millisecond))

	// While they fire: customers start conversations (acknowledgements)
	// and answer smart close, the scheduler is killed twice and the inbox
	// once.
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		parallel(nAcknowledg, 8, func(i int) {
			time.Sleep(time.Until(t0.Add(time.Duration(i) * 15 * time.Millisecond)))
			chatSay(t, client, base, b, fmt.Sprintf("m-a-%d", i), fmt.Sprintf("a-%d", i), fmt.Sprintf("Bonjour, a-%d", i), nil)
		})
	}()
	go func() {
		defer wg.Done()
		parallel(nAnswered, 4, func(i int) {
			// Before the inbox is killed: an answer must be stored before
			// the timeout comes (and if the scheduler has not read it yet
			// when it does, the inbox refuses the timeout: the customer
			// wrote).
			time.Sleep(time.Until(t0.Add(time.Second + time.Duration(i)*10*time.Millisecond)))
			chatSay(t, client, base, b, fmt.Sprintf("m-k-answer-%d", i), fmt.Sprintf("k-%d", i), "non merci", nil)
		})
	}()
	go func() {
		defer wg.Done()
		for _, step := range []struct {
			at   time.Duration
			what string
		}{{8 * time.Second, "scheduler"}, {18 * time.Second, "inbox"}, {30 * time.Second, "scheduler"}} {
			time.Sleep(time.Until(t0.Add(step.at)))
			if step.what == "scheduler" {
				schedNode.Kill()
				schedNode = keep(start("scheduler", schedAddr))
			} else {
				inboxNode.Kill()
				inboxNode = keep(start("inbox,chat", inboxAddr))
			}
			t.Logf("killed and restarted the %s at t0%+.1fs", step.what, time.Since(t0).Seconds())
		}
	}()
	wg.Wait()

	// Every effect, exactly once.
	want := map[string]map[string]int{
		"w": {"automatic_message": 1},
		"d": {"wake": 1},
		"o": {"offer": 1, "offer_expired": 1},
		"c": {"smart_close_timeout": 1},
		"f": {"smart_close_ask": 1, "smart_close_timeout": 1},
		"k": {"smart_close_answer": 1},
		"i": {"inactive": 1},
		"a": {"automatic_message": 1},
	}
	wantAutomatic := map[string]int{"w": 1, "c": 1, "f": 1, "k": 1, "a": 1}
	sizes := map[string]int{"w": nWaiting, "d": nDeferred, "o": nOffered, "c": nClosing, "f": nWaitFirst, "k": nAnswered, "i": nInactive, "a": nAcknowledg}
	// actions counts, per kind and action, the conversations that had it
	// once, and those that had it more than once.
	actions := func() (once, more map[string]map[string]int) {
		once, more = map[string]map[string]int{}, map[string]map[string]int{}
		rows, err := db.Query(ctx, `SELECT split_part(c.thread_key, '-', 1), a.action, count(*)
			FROM inbox.conversation_audit a JOIN inbox.conversations c ON c.id = a.conversation_id
			WHERE a.actor_kind = 'system' GROUP BY c.id, 1, 2`)
		require.NoError(t, err)
		for rows.Next() {
			var kind, action string
			var n int
			require.NoError(t, rows.Scan(&kind, &action, &n))
			if once[kind] == nil {
				once[kind], more[kind] = map[string]int{}, map[string]int{}
			}
			if n == 1 {
				once[kind][action]++
			} else {
				more[kind][action]++
			}
		}
		require.NoError(t, rows.Err())
		return once, more
	}
	complete := func() bool {
		once, _ := actions()
		for kind, acts := range want {
			for action := range acts {
				if once[kind][action] < sizes[kind] {
					return false
				}
			}
		}
		return true
	}
	for deadline := time.Now().Add(5 * time.Minute); !complete(); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			once, more := actions()
			var pending, overdue, views, stored, outbox int
			_ = db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE fired_at IS NULL), count(*) FILTER (WHERE fired_at IS NULL AND due_at < now()),
				(SELECT count(*) FROM scheduler.conversations), (SELECT count(*) FROM inbox.conversations), (SELECT count(*) FROM inbox.outbox)
				FROM scheduler.timers`).Scan(&pending, &overdue, &views, &stored, &outbox)
			rows, err := db.Query(ctx, `SELECT coalesce(state, ''), coalesce(wait_event_type, ''), coalesce(wait_event, ''), left(query, 120) FROM pg_stat_activity WHERE datname = current_database()`)
			if err == nil {
				for rows.Next() {
					var st, wt, we, q string
					_ = rows.Scan(&st, &wt, &we, &q)
					t.Logf("session: %s %s %s %s", st, wt, we, q)
				}
				rows.Close()
			}
			logMetrics(t, "scheduler", "http://"+schedAddr, "switchboard_bus_lag", "consumed_messages_total", "handler_failures")
			t.Fatalf("not every timer's effect happened: once %v, more than once %v; the inbox has %d conversations and %d events in its outbox; "+
				"the scheduler knows %d conversations, has %d timers pending, %d of them overdue", once, more, stored, outbox, views, pending, overdue)
		}
	}
	t.Logf("every effect happened by t0%+.1fs", time.Since(t0).Seconds())
	time.Sleep(3 * time.Second) // anything doubled would show by now
	once, more := actions()
	for kind, acts := range want {
		for action := range acts {
			require.Equal(t, sizes[kind], once[kind][action], "%s conversations with one %s", kind, action)
			require.Zero(t, more[kind][action], "%s conversations with %s more than once", kind, action)
		}
		for action, n := range once[kind] {
			require.Contains(t, acts, action, "%d %s conversations had an unexpected %s", n, kind, action)
		}
	}
	rows, err := db.Query(ctx, `SELECT split_part(c.thread_key, '-', 1), count(*), count(DISTINCT c.id)
		FROM inbox.messages m JOIN inbox.conversations c ON c.id = m.conversation_id
		WHERE m.direction = 'outbound' AND m.automatic GROUP BY 1`)
	require.NoError(t, err)
	automatic := map[string][2]int{}
	for rows.Next() {
		var kind string
		var n, convs int
		require.NoError(t, rows.Scan(&kind, &n, &convs))
		automatic[kind] = [2]int{n, convs}
	}
	require.NoError(t, rows.Err())
	for kind, per := range wantAutomatic {
		require.Equal(t, [2]int{per * sizes[kind], sizes[kind]}, automatic[kind], "automatic messages of %s conversations (messages, conversations)", kind)
	}
	for _, kind := range []string{"d", "o", "i"} {
		require.Zero(t, automatic[kind][0], "%s conversations got automatic messages", kind)
	}
	var overdue int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM scheduler.timers WHERE fired_at IS NULL AND due_at < now() - interval '5 seconds'`).Scan(&overdue))
	require.Zero(t, overdue, "timers due long ago never fired")
	var states []string
	rows, err = db.Query(ctx, `SELECT DISTINCT split_part(thread_key, '-', 1) || ':' || state FROM inbox.conversations WHERE split_part(thread_key, '-', 1) IN ('c', 'f', 'k') ORDER BY 1`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		states = append(states, s)
	}
	require.Equal(t, []string{"c:done", "f:done", "k:done"}, states, "smart close did not end every conversation")
}
