package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Scenario "ratelimit": two tenants on one all-in-one binary. Tenant B's
// token sends GET /v1/conversations at -ratelimit-b-rate a second, on
// schedule (within every limit), timed alone, then while tenant A's token
// floods the same route from -ratelimit-flooders senders as fast as they
// are answered: once with the API rates on (every token limited to
// -ratelimit-token-rate a second, burst as many), once with them off. It
// prints B's p50 and p99 in each phase and what A's flood got (200s and
// 429s a second).

// rateLimitResult is one run's figures.
type rateLimitResult struct {
	AloneP50     float64 `json:"alone_p50_ms"`
	AloneP99     float64 `json:"alone_p99_ms"`
	LimitedP50   float64 `json:"flood_limited_p50_ms"`
	LimitedP99   float64 `json:"flood_limited_p99_ms"`
	UnlimitedP50 float64 `json:"flood_unlimited_p50_ms"`
	UnlimitedP99 float64 `json:"flood_unlimited_p99_ms"`
	// FloodOK and FloodRefused are A's answers a second, limits on.
	FloodOK      float64 `json:"flood_ok_per_second"`
	FloodRefused float64 `json:"flood_429_per_second"`
	// FloodOKUnlimited is A's answers a second, limits off.
	FloodOKUnlimited float64 `json:"flood_ok_per_second_unlimited"`
}

// rateLimitScenario runs the scenario o.runs times and prints its medians.
func rateLimitScenario(ctx context.Context, o options, w io.Writer, report map[string]any) error {
	fmt.Fprintf(w, "\nratelimit scenario: tenant B's GET /v1/conversations, %d timed requests a phase at %d a second; tenant A's token floods the same route from %d senders (every token limited to %d a second when the limits are on); %d runs\n",
		o.rateLimitN, o.rateLimitBRate, o.rateLimitFlooders, o.rateLimitTokenRate, o.runs)
	var results []rateLimitResult
	for r := 1; r <= o.runs; r++ {
		res, err := rateLimitRun(ctx, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "run %d: B alone p50 %.1f ms p99 %.1f ms | flood, limits on: p50 %.1f ms p99 %.1f ms (A: %.0f 200/s, %.0f 429/s) | flood, limits off: p50 %.1f ms p99 %.1f ms (A: %.0f 200/s)\n",
			r, res.AloneP50, res.AloneP99, res.LimitedP50, res.LimitedP99, res.FloodOK, res.FloodRefused, res.UnlimitedP50, res.UnlimitedP99, res.FloodOKUnlimited)
		results = append(results, res)
	}
	med := medianOver(results)
	m := rateLimitResult{
		AloneP50: med(func(r rateLimitResult) float64 { return r.AloneP50 }), AloneP99: med(func(r rateLimitResult) float64 { return r.AloneP99 }),
		LimitedP50: med(func(r rateLimitResult) float64 { return r.LimitedP50 }), LimitedP99: med(func(r rateLimitResult) float64 { return r.LimitedP99 }),
		UnlimitedP50: med(func(r rateLimitResult) float64 { return r.UnlimitedP50 }), UnlimitedP99: med(func(r rateLimitResult) float64 { return r.UnlimitedP99 }),
		FloodOK: med(func(r rateLimitResult) float64 { return r.FloodOK }), FloodRefused: med(func(r rateLimitResult) float64 { return r.FloodRefused }),
		FloodOKUnlimited: med(func(r rateLimitResult) float64 { return r.FloodOKUnlimited }),
	}
	fmt.Fprintf(w, "\nmedians over %d runs\n", len(results))
	fmt.Fprintf(w, "  ratelimit  B alone                          p50 %6.1f ms  p99 %6.1f ms\n", m.AloneP50, m.AloneP99)
	fmt.Fprintf(w, "  ratelimit  B during A's flood, limits on    p50 %6.1f ms  p99 %6.1f ms   A: %.0f answered 200/s, %.0f answered 429/s\n", m.LimitedP50, m.LimitedP99, m.FloodOK, m.FloodRefused)
	fmt.Fprintf(w, "  ratelimit  B during A's flood, limits off   p50 %6.1f ms  p99 %6.1f ms   A: %.0f answered 200/s\n", m.UnlimitedP50, m.UnlimitedP99, m.FloodOKUnlimited)
	report["ratelimit"] = map[string]any{"runs": results, "median": m}
	return nil
}

// rateLimitRun runs the three phases once, on a fresh database: the
// binary started with the limits on for the first two, then again with
// them off.
func rateLimitRun(ctx context.Context, o options) (rateLimitResult, error) {
	var res rateLimitResult
	env, err := newRunEnv(ctx, o, "sbbench_rl_")
	if err != nil {
		return res, err
	}
	defer env.close()
	a := env.boot
	b, err := env.createTenant(o, "Bravo")
	if err != nil {
		return res, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.rateLimitFlooders + 1}, Timeout: 30 * time.Second}

	phase := func(limits bool) (alone, flood [2]float64, ok, refused float64, err error) {
		args := []string{fmt.Sprintf("-inbox.api.token.rate=%d", o.rateLimitTokenRate), fmt.Sprintf("-inbox.api.token.burst=%d", o.rateLimitTokenRate)}
		if !limits {
			args = []string{"-inbox.api.token.rate=0", "-inbox.api.tenant.rate=0"}
		}
		node, err := env.start(ctx, o, o.addr, args...)
		if err != nil {
			return alone, flood, 0, 0, err
		}
		defer node.Stop()
		url := node.Base() + "/v1/conversations?limit=50"
		timeB := func() (p [2]float64, err error) {
			p[0], p[1], err = pacedGets(ctx, client, url, b.APIToken.Token, o.rateLimitN, o.rateLimitBRate)
			return p, err
		}
		if limits {
			if alone, err = timeB(); err != nil {
				return alone, flood, 0, 0, err
			}
		}
		stop := make(chan struct{})
		var okN, refusedN atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range o.rateLimitFlooders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					status, err := getStatus(ctx, client, url, a.APIToken.Token)
					switch {
					case err != nil:
					case status == http.StatusOK:
						okN.Add(1)
					case status == http.StatusTooManyRequests:
						refusedN.Add(1)
					}
				}
			}()
		}
		// The flood's first answers, before B is timed under it.
		time.Sleep(time.Second)
		flood, err = timeB()
		close(stop)
		wg.Wait()
		secs := time.Since(start).Seconds()
		return alone, flood, float64(okN.Load()) / secs, float64(refusedN.Load()) / secs, err
	}

	alone, flood, ok, refused, err := phase(true)
	if err != nil {
		return res, err
	}
	res.AloneP50, res.AloneP99, res.LimitedP50, res.LimitedP99, res.FloodOK, res.FloodRefused = alone[0], alone[1], flood[0], flood[1], ok, refused
	_, flood, ok, _, err = phase(false)
	if err != nil {
		return res, err
	}
	res.UnlimitedP50, res.UnlimitedP99, res.FloodOKUnlimited = flood[0], flood[1], ok
	return res, nil
}

// pacedGets makes n GETs of url with token, one every 1/rate seconds on
// schedule (a late one goes at once), after 20 to warm the caches; every
// answer must be 200. It returns the p50 and p99 of the answer times, in
// ms.
func pacedGets(ctx context.Context, client *http.Client, url, token string, n, rate int) (p50, p99 float64, err error) {
	every := time.Second / time.Duration(rate)
	lat := make([]time.Duration, 0, n)
	next := time.Now()
	for i := range 20 + n {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(every)
		t0 := time.Now()
		status, err := getStatus(ctx, client, url, token)
		if err != nil {
			return 0, 0, err
		}
		if status != http.StatusOK {
			return 0, 0, fmt.Errorf("GET %s: %d", url, status)
		}
		if i >= 20 {
			lat = append(lat, time.Since(t0))
		}
	}
	p50, p99 = p50p99(lat)
	return p50, p99, nil
}

// getStatus makes one GET with token and returns its status.
func getStatus(ctx context.Context, client *http.Client, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
