package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// call is a request that reports its status instead of failing the test
// (agents' workers meet conflicts and restarts as a matter of course).
func call(client *http.Client, method, url, token string, body any) int {
	var rd *bytes.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRoutingSurvivesChaos routes 5,000 chat conversations to 200 agents
// of capacity 2 through two router processes beside an inbox and
// scheduler process, on a Kafka broker in this process and a Redis
// database of their own. Agents accept every offer and finish each
// conversation at once. Part-way, Redis loses everything (FLUSHDB) and
// one router is killed with SIGKILL. Throughout, no agent holds more
// than their capacity and no conversation has two holders; in the end
// every conversation was offered and accepted exactly once and is done.
func TestRoutingSurvivesChaos(t *testing.T) {
	const (
		nAgents = 200
		nConvs  = 5000
		capac   = 2
	)
	dbURL := testkit.DatabaseURL(t)
	brokers := testkit.Kafka(t)
	// A database of its own: FLUSHDB must not touch other tests' keys.
	redisURL := "redis://127.0.0.1:6379/11"
	opt, err := goredis.ParseURL(redisURL)
	require.NoError(t, err)
	rdb := goredis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	require.NoError(t, rdb.FlushDB(ctx).Err())
	env := append(testkit.KafkaEnv(brokers), "SB_REDIS_URL="+redisURL)
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	dataDir := t.TempDir()
	procs := newProcesses(t)
	start := func(targets string) *testkit.Node {
		t.Helper()
		addr, err := testkit.FreeAddr()
		require.NoError(t, err)
		return procs.start(t, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: dataDir, Addr: addr, Targets: targets, Env: env,
			Args: []string{"-kafka.consumer.session-timeout=6s", "-presence.window=10s", "-router.decision-grace=5s"}})
	}
	inboxNode := start("inbox,chat,scheduler")
	routerA := start("router")
	routerB := start("router")
	base := inboxNode.Base()
	admin := b.APIToken.Token
	client := &http.Client{Timeout: 10 * time.Second}
	db, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)

	// A push queue, the default queue of the chat channel.
	var queue struct {
		ID string `json:"id"`
	}
	mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/queues", admin, map[string]string{"name": "Chat"}, &queue)
	mustAPI(t, http.StatusOK, http.MethodPut, base+"/v1/admin/queues/"+queue.ID+"/routing", admin, map[string]any{"mode": "push", "offer_seconds": 30}, nil)
	var accounts struct {
		Items []struct {
			ID      string `json:"id"`
			Channel string `json:"channel"`
		} `json:"items"`
	}
	mustAPI(t, http.StatusOK, http.MethodGet, base+"/v1/admin/channel-accounts", admin, nil, &accounts)
	for _, a := range accounts.Items {
		if a.Channel == "chat" {
			mustAPI(t, http.StatusOK, http.MethodPut, base+"/v1/admin/channel-accounts/"+a.ID+"/routing", admin, map[string]any{"default_queue_id": queue.ID}, nil)
		}
	}

	// 200 agents online, beating every 2 s.
	tokens := make([]string, nAgents)
	byID := map[string]string{}
	var byMu sync.Mutex
	parallel(nAgents, 8, func(i int) {
		email := fmt.Sprintf("agent-%d@acme.test", i)
		var u struct {
			ID string `json:"id"`
		}
		mustAPI(t, http.StatusCreated, http.MethodPost, base+"/v1/admin/users", admin, map[string]any{"email": email, "name": fmt.Sprintf("Agent %d", i),
			"role": "agent", "queue_ids": []string{queue.ID}, "capacity": capac, "password": "correct horse battery"}, &u)
		var login struct {
			AccessToken string `json:"access_token"`
		}
		mustAPI(t, http.StatusOK, http.MethodPost, base+"/v1/auth/login", "", map[string]string{"tenant_id": b.Tenant.ID, "email": email, "password": "correct horse battery"}, &login)
		tokens[i] = login.AccessToken
		byMu.Lock()
		byID[u.ID] = login.AccessToken
		byMu.Unlock()
		mustAPI(t, http.StatusOK, http.MethodPut, base+"/v1/me/presence", login.AccessToken, map[string]string{"status": "online"}, nil)
	})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() {
		for runCtx.Err() == nil {
			parallel(nAgents, 8, func(i int) { call(client, http.MethodPost, base+"/v1/me/heartbeat", tokens[i], nil) })
			select {
			case <-runCtx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	})

	// The watch: no agent over capacity, no conversation with two holders.
	var overCapacity, twoHolders, samples atomic.Int64
	wg.Go(func() {
		for runCtx.Err() == nil {
			var over, two int64
			err := db.QueryRow(runCtx, `SELECT
				(SELECT count(*) FROM (SELECT a, count(*) AS n FROM inbox.conversations, unnest(assignee_ids) AS a
				  WHERE tenant_id = $1 AND state IN ('offered', 'assigned', 'answered', 'closing') GROUP BY a) h WHERE n > $2),
				(SELECT count(*) FROM inbox.conversations WHERE tenant_id = $1 AND cardinality(assignee_ids) > 1)`, b.Tenant.ID, capac).Scan(&over, &two)
			if err == nil {
				overCapacity.Add(over)
				twoHolders.Add(two)
				samples.Add(1)
			}
			select {
			case <-runCtx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	})

	// The agents: accept every offer made to them, then finish it.
	var accepted atomic.Int64
	for range 8 {
		wg.Go(func() {
			for runCtx.Err() == nil {
				rows, err := db.Query(runCtx, `SELECT id::text, assignee_ids[1]::text FROM inbox.conversations
					WHERE tenant_id = $1 AND state = 'offered' ORDER BY random() LIMIT 20`, b.Tenant.ID)
				var offered [][2]string
				if err == nil {
					for rows.Next() {
						var id, agent string
						if rows.Scan(&id, &agent) == nil {
							offered = append(offered, [2]string{id, agent})
						}
					}
					rows.Close()
				}
				for _, o := range offered {
					byMu.Lock()
					tok := byID[o[1]]
					byMu.Unlock()
					if call(client, http.MethodPost, base+"/v1/conversations/"+o[0]+"/accept", tok, nil) == http.StatusOK {
						accepted.Add(1)
						call(client, http.MethodPost, base+"/v1/conversations/"+o[0]+"/archive", tok, nil)
					}
				}
				if len(offered) == 0 {
					select {
					case <-runCtx.Done():
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		})
	}

	// The customers, and the chaos part-way.
	var chaos sync.WaitGroup
	chaos.Go(func() {
		testkit.Eventually(t, 3*time.Minute, func() bool { return accepted.Load() >= nConvs/4 }, "routing never got going")
		require.NoError(t, rdb.FlushDB(ctx).Err())
		t.Logf("Redis flushed after %d accepted", accepted.Load())
		testkit.Eventually(t, 3*time.Minute, func() bool { return accepted.Load() >= nConvs/2 }, "routing did not resume after the flush")
		routerA.Kill()
		t.Logf("router A killed after %d accepted", accepted.Load())
	})
	parallel(nConvs, 16, func(i int) {
		s := fmt.Sprintf("s-%d", i)
		chatSay(t, client, base, b, "m-"+s, s, "Bonjour "+s, nil)
	})
	chaos.Wait()

	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var done int
		require.NoError(t, db.QueryRow(ctx, `SELECT count(*) FROM inbox.conversations WHERE tenant_id = $1 AND state = 'done'`, b.Tenant.ID).Scan(&done))
		if done == nConvs {
			break
		}
		if time.Now().After(deadline) {
			// What was left, and where the surviving router stands.
			rows, err := db.Query(ctx, `SELECT state, count(*) FROM inbox.conversations WHERE tenant_id = $1 GROUP BY 1`, b.Tenant.ID)
			require.NoError(t, err)
			for rows.Next() {
				var state string
				var n int
				require.NoError(t, rows.Scan(&state, &n))
				t.Logf("%d conversations %s", n, state)
			}
			require.NoError(t, rows.Err())
			logMetrics(t, "router B", routerB.Base(), "switchboard_bus_lag", "consumed_messages_total", "handler_failures", "switchboard_router_")
			t.Fatalf("after 5m: %d of %d conversations done: not every conversation was offered, accepted and finished (%d accept calls succeeded)", done, nConvs, accepted.Load())
		}
	}
	stop()
	wg.Wait()

	var convs, acceptedOnce, offeredAtLeastOnce int
	require.NoError(t, db.QueryRow(ctx, `SELECT count(*),
			count(*) FILTER (WHERE (SELECT count(*) FROM inbox.conversation_audit a WHERE a.conversation_id = c.id AND a.action = 'accept') = 1),
			count(*) FILTER (WHERE EXISTS (SELECT 1 FROM inbox.conversation_audit a WHERE a.conversation_id = c.id AND a.action = 'offer'))
		FROM inbox.conversations c WHERE c.tenant_id = $1`, b.Tenant.ID).Scan(&convs, &acceptedOnce, &offeredAtLeastOnce))
	t.Logf("%d conversations, %d accepted once, %d offered; %d accept calls succeeded; %d samples of holdings", convs, acceptedOnce, offeredAtLeastOnce,
		accepted.Load(), samples.Load())
	require.Greater(t, samples.Load(), int64(100), "the watch sampled the holdings")
	require.Equal(t, nConvs, convs)
	require.Equal(t, nConvs, acceptedOnce, "every conversation accepted exactly once")
	require.Equal(t, nConvs, offeredAtLeastOnce, "every conversation offered")
	require.Zero(t, overCapacity.Load(), "samples of an agent over capacity")
	require.Zero(t, twoHolders.Load(), "samples of a conversation with two holders")
}
