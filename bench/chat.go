package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// waitChatLive sends a warm-up message until the tenant's chat channel
// answers 202: the channel goes live once the connector has read its
// announcement.
func waitChatLive(ctx context.Context, client *http.Client, node *testkit.Node, b testkit.Bootstrap) error {
	err := poll(ctx, 30*time.Second, 50*time.Millisecond, func() (bool, error) {
		status, err := send(client, node.Base(), b, "warmup", "warmup")
		return err == nil && status == http.StatusAccepted, nil
	})
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("the chat channel never went live:\n%s", node.Logs())
	}
	return err
}

// sendChat sends n signed chat messages, ids prefix-0000000 up, perConv to
// a conversation, from concurrency senders that send a refused message
// again as a chat platform does; it returns the answer times of the
// acknowledged sends and how many sends were refused.
func sendChat(client *http.Client, base string, b testkit.Bootstrap, prefix string, n, concurrency, perConv int) ([]time.Duration, int) {
	var (
		next    atomic.Int64
		refused atomic.Int64
		mu      sync.Mutex
		lat     = make([]time.Duration, 0, n)
		wg      sync.WaitGroup
	)
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/concurrency+1)
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				id := fmt.Sprintf("%s-%07d", prefix, i)
				session := fmt.Sprintf("%s-session-%07d", prefix, i/perConv)
				for {
					start := time.Now()
					status, err := send(client, base, b, id, session)
					if err == nil && status == http.StatusAccepted {
						local = append(local, time.Since(start))
						break
					}
					// Not acknowledged: a chat platform sends it again.
					refused.Add(1)
					time.Sleep(10 * time.Millisecond)
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, int(refused.Load())
}

// chatRun runs the chat scenario once on a fresh database and data
// directory.
func chatRun(ctx context.Context, o options, res *Result) error {
	env, err := newRunEnv(ctx, o, "sbbench_")
	if err != nil {
		return err
	}
	defer env.close()
	b := env.boot
	node, err := env.start(ctx, o, o.addr)
	if err != nil {
		return err
	}
	defer node.Stop()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}, Timeout: 30 * time.Second}
	if err := waitChatLive(ctx, client, node, b); err != nil {
		return err
	}
	lat, refused := sendChat(client, node.Base(), b, "bench", o.n, o.concurrency, o.perConv)
	res.WebhookP50, res.WebhookP99 = p50p99(lat)
	res.Refused = refused

	conn, err := pgx.Connect(ctx, env.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var stored int
	err = poll(ctx, 5*time.Minute, 100*time.Millisecond, func() (bool, error) {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM inbox.messages WHERE external_id LIKE 'bench-%'`).Scan(&stored); err != nil {
			return false, err
		}
		if stored > o.n {
			return false, fmt.Errorf("%d messages stored for %d sent", stored, o.n)
		}
		return stored == o.n, nil
	})
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("only %d of %d messages stored after 5 minutes", stored, o.n)
	}
	if err != nil {
		return err
	}
	var span, p50, p99 float64
	err = conn.QueryRow(ctx, `SELECT
			extract(epoch FROM max(stored_at) - min(received_at)),
			1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY stored_at - received_at)),
			1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY stored_at - received_at))
		FROM inbox.messages WHERE external_id LIKE 'bench-%'`).Scan(&span, &p50, &p99)
	if err != nil {
		return fmt.Errorf("read latencies: %w", err)
	}
	res.StoredPerSecond = float64(o.n) / span
	res.AcceptToStoredP50, res.AcceptToStoredP99 = p50, p99
	return nil
}

func send(client *http.Client, base string, b testkit.Bootstrap, id, session string) (int, error) {
	body := fmt.Appendf(nil, `{"message_id":%q,"session_id":%q,"user":{"id":%q,"name":"Bench Customer"},"text":"Bonjour, je n'ai pas reçu ma commande %s, pouvez-vous vérifier ?"}`, id, session, session, id)
	req, err := testkit.ChatRequest(base, b, body, time.Now())
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	// Read to the end, or the connection is not reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
