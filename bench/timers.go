package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// TimersResult is one run of the timers scenario. Durations are in
// milliseconds unless their name says seconds.
type TimersResult struct {
	PgbenchInsertTPS float64 `json:"pgbench_insert_tps"`
	RedisSetOPS      float64 `json:"redis_set_ops"`

	// Pending is how many timers were seeded in SQL before the
	// measurements, due a day to a month ahead: never due during the run.
	Pending            int     `json:"pending_seeded"`
	PendingSeedSeconds float64 `json:"pending_seed_seconds"`

	// The steady phase: Steady conversations deferred through the API,
	// due at SteadyRate per second.
	Steady             int     `json:"steady_timers"`
	SteadyRate         int     `json:"steady_rate"`
	SteadySetupSeconds float64 `json:"steady_setup_seconds"`
	// SteadyAheadSeconds is how long before the first due time the
	// scheduler held every timer of the phase (negative: the set-up
	// overran, and the first timers were late because of it).
	SteadyAheadSeconds float64 `json:"steady_set_ahead_seconds"`
	// SteadyApplied counts the wakes applied; SteadyOther those recorded
	// with another outcome, SteadyMissing those never recorded.
	SteadyApplied  int     `json:"steady_applied"`
	SteadyOther    int     `json:"steady_other_outcome"`
	SteadyMissing  int     `json:"steady_never_recorded"`
	SteadyRateSeen float64 `json:"steady_applied_per_second"`
	// Lateness is applied_at - due_at of inbox.applied_commands.
	SteadyP50 float64 `json:"steady_lateness_p50_ms"`
	SteadyP99 float64 `json:"steady_lateness_p99_ms"`
	SteadyMax float64 `json:"steady_lateness_max_ms"`
	// SteadyFire* is the scheduler's share, from its own histogram on
	// /metrics (due to published): the mean, and the upper bound of the
	// bucket holding the 99th percentile.
	SteadyFireMean float64 `json:"steady_fire_lateness_mean_ms"`
	SteadyFireP99  float64 `json:"steady_fire_lateness_p99_bucket_ms"`

	// The burst: Burst deferred conversations seeded in SQL, all due at
	// the same instant T.
	Burst            int     `json:"burst_timers"`
	BurstSeedSeconds float64 `json:"burst_seed_seconds"`
	// BurstAheadSeconds is how long before T the seeding committed.
	BurstAheadSeconds float64 `json:"burst_seeded_ahead_seconds"`
	BurstApplied      int     `json:"burst_applied"`
	BurstOther        int     `json:"burst_other_outcome"`
	BurstMissing      int     `json:"burst_never_recorded"`
	// BurstLastSeconds is max(applied_at) - T.
	BurstLastSeconds float64 `json:"burst_last_applied_seconds"`
	BurstRate        float64 `json:"burst_applied_per_second"`
	BurstP50         float64 `json:"burst_lateness_p50_ms"`
	BurstP99         float64 `json:"burst_lateness_p99_ms"`
	BurstFireMean    float64 `json:"burst_fire_lateness_mean_ms"`
	BurstFireP99     float64 `json:"burst_fire_lateness_p99_bucket_ms"`
	// BurstPublishedSeconds is when the fire loop had published the last
	// command, after T (no timer of the burst left unfired).
	BurstPublishedSeconds float64 `json:"burst_last_published_seconds"`
	// Where the time goes, from messaging_process_duration_seconds on
	// /metrics: the inbox's command handler (its batches and the time
	// spent in them) and the scheduler's follower of conversation events,
	// which removes the fired timers once the wakes are announced.
	BurstApplyBatches     int     `json:"burst_inbox_command_batches"`
	BurstApplyBusySeconds float64 `json:"burst_inbox_command_busy_seconds"`
	BurstFollowBusySecs   float64 `json:"burst_scheduler_follow_busy_seconds"`

	// Cancel: Cancel deferred conversations re-opened by a customer
	// message each, which cancels their wake-up.
	Cancel int `json:"cancel_timers"`
	// CancelSendSeconds is the time to send the messages (answered 202);
	// CancelSeconds the time from the first until the last timer is gone.
	CancelSendSeconds float64 `json:"cancel_send_seconds"`
	CancelSeconds     float64 `json:"cancel_all_gone_seconds"`
	CancelPer         float64 `json:"cancel_per_timer_ms"`
	// CancelP50 and CancelP99 run from each message's 202 to its timer
	// gone, seen by polling every timersPoll.
	CancelP50  float64 `json:"cancel_latency_p50_ms"`
	CancelP99  float64 `json:"cancel_latency_p99_ms"`
	CancelLeft int     `json:"cancel_timers_left"`

	// Reschedule: Reschedule conversations waiting in new under a waiting
	// message whose hours one PATCH changes.
	Reschedule int     `json:"reschedule_timers"`
	PatchMs    float64 `json:"reschedule_patch_answer_ms"`
	// RescheduleSeconds runs from the PATCH's answer until every timer has
	// its new due time.
	RescheduleSeconds float64 `json:"reschedule_all_moved_seconds"`
	ReschedulePer     float64 `json:"reschedule_per_timer_ms"`
	RescheduleLeft    int     `json:"reschedule_timers_not_moved"`
}

const (
	// timersPoll is the pause between two looks at the tables while a
	// phase runs; the cancel and reschedule times are this precise.
	timersPoll = 20 * time.Millisecond
	// timersWait bounds every wait for the binary.
	timersWait = 3 * time.Minute
	// timersTargetP99 and timersGoalP99 are the target and goal
	// for the p99 lateness at 1M pending timers, in milliseconds.
	timersTargetP99 = 1000.0
	timersGoalP99   = 250.0
	// The waiting message's hours before and after the PATCH (83 and 167
	// days): beyond the pending timers (a month ahead at most), short of
	// the cancel phase's deferrals (timersCancelAhead), so that a range of
	// due_at tells each phase's timers apart.
	timersHoursBefore = 2000.0
	timersHoursAfter  = 4000.0
	// timersCancelAhead is how far ahead the cancel phase defers (200
	// days; a deferral is refused beyond a year).
	timersCancelAhead = 200 * 24 * time.Hour
	// timersStateVersion is the version, and state version, of a chat
	// conversation created by a webhook (1), its language detected (2),
	// taken (3), then deferred (4): what its wake timer expects. The
	// steady phase reads it from its real timers (wake/<conversation>/4)
	// for the burst's seeded ones; this is for the pending ones, seeded
	// before.
	timersStateVersion = 4
	agentPassword      = "bench-agent-password-0123"
	// timersAgentClients is how many of the agent's actions (take, defer)
	// are sent at once. Webhooks go at -c; agent actions hold a database
	// connection each for longer, and on two cores 64 at once take more
	// than twice as long in all as 16 (the binary's pool has 16).
	timersAgentClients = 16
)

// timersScenario runs the timers scenario o.timersRuns times and prints it.
func timersScenario(ctx context.Context, o options, w io.Writer, report map[string]any) error {
	if o.timersPending < 0 || o.timersSteady < 1 || o.timersRate < 1 || o.timersBurst < 1 || o.timersCancel < 1 ||
		o.timersReschedule < 1 || o.timersRuns < 1 || o.concurrency < 1 {
		return fmt.Errorf("-timers-pending must be at least 0, and -timers-n, -timers-rate, -timers-burst, -timers-cancel, -timers-reschedule, -timers-runs and -c at least 1")
	}
	fmt.Fprintf(w, "\ntimers scenario: %d pending timers seeded in SQL (never due during the run), then through the binary: %d wakes due at %d/s, a burst of %d due in the same second (seeded in SQL), %d cancelled, %d moved by one PATCH; %d runs\n\n",
		o.timersPending, o.timersSteady, o.timersRate, o.timersBurst, o.timersCancel, o.timersReschedule, o.timersRuns)
	var results []TimersResult
	for r := 1; r <= o.timersRuns; r++ {
		var res TimersResult
		var err error
		if res.PgbenchInsertTPS, err = pgbenchInsert(ctx, o); err != nil {
			return err
		}
		if res.RedisSetOPS, err = redisSet(ctx, o.concurrency); err != nil {
			return err
		}
		if err := timersRun(ctx, o, w, &res); err != nil {
			return fmt.Errorf("timers scenario, run %d: %w", r, err)
		}
		fmt.Fprintf(w, "run %d: pgbench %.0f inserts/s, redis %.0f SET/s | %d pending | steady %d/s: lateness p50 %.1f ms p99 %.1f ms max %.1f ms, %d of %d applied | burst %d: last applied %.2f s after due, %.0f/s, p50 %.0f ms p99 %.0f ms, %d of %d applied | cancel %d: %.2f s, %.2f ms each | reschedule %d: %.2f s, %.3f ms each\n",
			r, res.PgbenchInsertTPS, res.RedisSetOPS, res.Pending, res.SteadyRate, res.SteadyP50, res.SteadyP99, res.SteadyMax, res.SteadyApplied, res.Steady,
			res.Burst, res.BurstLastSeconds, res.BurstRate, res.BurstP50, res.BurstP99, res.BurstApplied, res.Burst,
			res.Cancel, res.CancelSeconds, res.CancelPer, res.Reschedule, res.RescheduleSeconds, res.ReschedulePer)
		results = append(results, res)
	}

	med := medianOver(results)
	sum := func(f func(TimersResult) int) int {
		n := 0
		for _, r := range results {
			n += f(r)
		}
		return n
	}
	m := TimersResult{
		PgbenchInsertTPS:      med(func(r TimersResult) float64 { return r.PgbenchInsertTPS }),
		RedisSetOPS:           med(func(r TimersResult) float64 { return r.RedisSetOPS }),
		Pending:               o.timersPending,
		PendingSeedSeconds:    med(func(r TimersResult) float64 { return r.PendingSeedSeconds }),
		Steady:                o.timersSteady,
		SteadyRate:            o.timersRate,
		SteadySetupSeconds:    med(func(r TimersResult) float64 { return r.SteadySetupSeconds }),
		SteadyAheadSeconds:    med(func(r TimersResult) float64 { return r.SteadyAheadSeconds }),
		SteadyRateSeen:        med(func(r TimersResult) float64 { return r.SteadyRateSeen }),
		SteadyP50:             med(func(r TimersResult) float64 { return r.SteadyP50 }),
		SteadyP99:             med(func(r TimersResult) float64 { return r.SteadyP99 }),
		SteadyMax:             med(func(r TimersResult) float64 { return r.SteadyMax }),
		SteadyFireMean:        med(func(r TimersResult) float64 { return r.SteadyFireMean }),
		SteadyFireP99:         med(func(r TimersResult) float64 { return r.SteadyFireP99 }),
		Burst:                 o.timersBurst,
		BurstSeedSeconds:      med(func(r TimersResult) float64 { return r.BurstSeedSeconds }),
		BurstAheadSeconds:     med(func(r TimersResult) float64 { return r.BurstAheadSeconds }),
		BurstLastSeconds:      med(func(r TimersResult) float64 { return r.BurstLastSeconds }),
		BurstRate:             med(func(r TimersResult) float64 { return r.BurstRate }),
		BurstP50:              med(func(r TimersResult) float64 { return r.BurstP50 }),
		BurstP99:              med(func(r TimersResult) float64 { return r.BurstP99 }),
		BurstFireMean:         med(func(r TimersResult) float64 { return r.BurstFireMean }),
		BurstFireP99:          med(func(r TimersResult) float64 { return r.BurstFireP99 }),
		BurstPublishedSeconds: med(func(r TimersResult) float64 { return r.BurstPublishedSeconds }),
		BurstApplyBatches:     int(med(func(r TimersResult) float64 { return float64(r.BurstApplyBatches) })),
		BurstApplyBusySeconds: med(func(r TimersResult) float64 { return r.BurstApplyBusySeconds }),
		BurstFollowBusySecs:   med(func(r TimersResult) float64 { return r.BurstFollowBusySecs }),
		Cancel:                o.timersCancel,
		CancelSendSeconds:     med(func(r TimersResult) float64 { return r.CancelSendSeconds }),
		CancelSeconds:         med(func(r TimersResult) float64 { return r.CancelSeconds }),
		CancelPer:             med(func(r TimersResult) float64 { return r.CancelPer }),
		CancelP50:             med(func(r TimersResult) float64 { return r.CancelP50 }),
		CancelP99:             med(func(r TimersResult) float64 { return r.CancelP99 }),
		Reschedule:            o.timersReschedule,
		PatchMs:               med(func(r TimersResult) float64 { return r.PatchMs }),
		RescheduleSeconds:     med(func(r TimersResult) float64 { return r.RescheduleSeconds }),
		ReschedulePer:         med(func(r TimersResult) float64 { return r.ReschedulePer }),
		// Counts are summed over the runs: one wake lost in one run is one
		// too many.
		SteadyApplied:  sum(func(r TimersResult) int { return r.SteadyApplied }),
		SteadyOther:    sum(func(r TimersResult) int { return r.SteadyOther }),
		SteadyMissing:  sum(func(r TimersResult) int { return r.SteadyMissing }),
		BurstApplied:   sum(func(r TimersResult) int { return r.BurstApplied }),
		BurstOther:     sum(func(r TimersResult) int { return r.BurstOther }),
		BurstMissing:   sum(func(r TimersResult) int { return r.BurstMissing }),
		CancelLeft:     sum(func(r TimersResult) int { return r.CancelLeft }),
		RescheduleLeft: sum(func(r TimersResult) int { return r.RescheduleLeft }),
	}
	runs := len(results)
	row := func(label, value, note string) {
		fmt.Fprintf(w, "  timers   %-50s %14s   %s\n", label, value, note)
	}
	ms := func(v float64) string { return fmt.Sprintf("%.1f ms", v) }
	sec := func(v float64) string { return fmt.Sprintf("%.2f s", v) }
	count := func(n, of int) string { return fmt.Sprintf("%d of %d", n, of) }
	fmt.Fprintf(w, "\nmedians over %d runs (counts summed)\n", runs)
	fmt.Fprintf(w, "  ceiling  %-50s %10.0f rows/s\n", fmt.Sprintf("pgbench single-row INSERT, %d clients", o.concurrency), m.PgbenchInsertTPS)
	fmt.Fprintf(w, "  ceiling  %-50s %10.0f ops/s\n", fmt.Sprintf("redis-benchmark SET, %d clients", o.concurrency), m.RedisSetOPS)
	row("pending timers, seeded in SQL, due in 1 to 30 days", strconv.Itoa(m.Pending), fmt.Sprintf("seeded in %.0f s; never due during the run", m.PendingSeedSeconds))
	row(fmt.Sprintf("steady, %d wakes due at %d/s: lateness p50", m.Steady, m.SteadyRate), ms(m.SteadyP50), "applied_at - due_at at the inbox")
	row("steady: lateness p99", ms(m.SteadyP99), fmt.Sprintf("target <= %.0f ms: %s, goal <= %.0f ms: %s",
		timersTargetP99, verdict(m.SteadyP99 <= timersTargetP99), timersGoalP99, verdict(m.SteadyP99 <= timersGoalP99)))
	row("steady: lateness max", ms(m.SteadyMax), "")
	row("steady: of which due -> published, mean", ms(m.SteadyFireMean), p99Bucket(m.SteadyFireP99))
	row("steady: wakes applied", count(m.SteadyApplied, runs*m.Steady), fmt.Sprintf("all: %s (at %.0f/s; set %.1f s before the first was due)",
		verdict(m.SteadyApplied == runs*m.Steady), m.SteadyRateSeen, m.SteadyAheadSeconds))
	row(fmt.Sprintf("burst, %d due at once: last applied after due", m.Burst), sec(m.BurstLastSeconds), fmt.Sprintf("%.0f applied/s", m.BurstRate))
	row("burst: last published (scheduler) after due", sec(m.BurstPublishedSeconds), fmt.Sprintf("due -> published mean %.0f ms", m.BurstFireMean))
	row("burst: lateness p50", ms(m.BurstP50), "")
	row("burst: lateness p99", ms(m.BurstP99), "")
	row("burst: inbox command handler busy", sec(m.BurstApplyBusySeconds), fmt.Sprintf("%d batches of %.0f commands, summed over partitions; scheduler follower busy %.1f s",
		m.BurstApplyBatches, float64(m.Burst)/math.Max(1, float64(m.BurstApplyBatches)), m.BurstFollowBusySecs))
	row("burst: wakes applied", count(m.BurstApplied, runs*m.Burst), "all: "+verdict(m.BurstApplied == runs*m.Burst))
	row(fmt.Sprintf("cancel, %d by a customer message each: all gone", m.Cancel), sec(m.CancelSeconds),
		fmt.Sprintf("after the first message (all sent in %.2f s); %.2f ms per cancel", m.CancelSendSeconds, m.CancelPer))
	row("cancel: message answered -> timer gone, p50", ms(m.CancelP50), "")
	row("cancel: message answered -> timer gone, p99", ms(m.CancelP99), "")
	row("cancel: timers left", strconv.Itoa(m.CancelLeft), "none: "+verdict(m.CancelLeft == 0))
	row(fmt.Sprintf("reschedule, %d by one PATCH: all moved", m.Reschedule), sec(m.RescheduleSeconds),
		fmt.Sprintf("after its answer (%.0f ms); %.3f ms per timer", m.PatchMs, m.ReschedulePer))
	row("reschedule: timers not moved", strconv.Itoa(m.RescheduleLeft), "none: "+verdict(m.RescheduleLeft == 0))
	report["timers"] = map[string]any{"runs": results, "median": m}
	return nil
}

// timersBench is one run of the timers scenario: its database, binary,
// tenant and agent.
type timersBench struct {
	o      options
	w      io.Writer
	env    *runEnv
	node   *testkit.Node
	conn   *pgx.Conn
	client *http.Client
	// agent is the access token of the agent who takes and defers.
	agent   string
	agentID string
	// stateVersion is what a wake timer expects of a conversation created
	// by a webhook, taken and deferred (timersStateVersion, then what the
	// steady phase saw).
	stateVersion int64
}

// timersRun runs the timers scenario once on a fresh database: the pending
// timers, then the reschedule, steady, cancel and burst phases, in that
// order (the reschedule phase first, so that its waiting message is gone
// before conversations come back to new by the hundred thousand).
func timersRun(ctx context.Context, o options, w io.Writer, res *TimersResult) error {
	env, err := newRunEnv(ctx, o, "sbbench_timers_")
	if err != nil {
		return err
	}
	defer env.close()
	node, err := env.start(ctx, o, o.addr)
	if err != nil {
		return err
	}
	defer node.Stop()
	conn, err := pgx.Connect(ctx, env.dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	t := &timersBench{o: o, w: w, env: env, node: node, conn: conn, stateVersion: timersStateVersion,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}, Timeout: 30 * time.Second}}

	// The chat channel goes live once the connector has read its
	// announcement.
	err = poll(ctx, 30*time.Second, 50*time.Millisecond, func() (bool, error) {
		status, err := send(t.client, node.Base(), env.boot, "warmup", "warmup")
		return err == nil && status == http.StatusAccepted, nil
	})
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("the chat channel never went live:\n%s", node.Logs())
	}
	if err != nil {
		return err
	}
	if err := t.createAgent(ctx); err != nil {
		return err
	}
	// The warm-up's conversation is archived, so that the phases' counts
	// of conversations and timers are their own.
	warm, err := t.conversations(ctx, "warmup", 1)
	if err != nil {
		return err
	}
	if err := t.expect(ctx, http.StatusOK, http.MethodPost, "/v1/conversations/"+warm[0]+"/archive", env.boot.APIToken.Token,
		map[string]string{"reason": "bench warm-up"}); err != nil {
		return err
	}

	steps := []struct {
		name string
		fn   func(context.Context, *TimersResult) error
	}{
		{"pending", t.seedPending},
		{"reschedule", t.reschedule},
		{"steady", t.steady},
		{"cancel", t.cancel},
		{"burst", t.burst},
	}
	for _, s := range steps {
		if err := s.fn(ctx, res); err != nil {
			return fmt.Errorf("%s phase: %w", s.name, err)
		}
	}
	return nil
}

// logf prints a progress line.
func (t *timersBench) logf(format string, args ...any) {
	fmt.Fprintf(t.w, "  "+format+"\n", args...)
}

// createAgent creates the agent through the admin API and logs in.
func (t *timersBench) createAgent(ctx context.Context) error {
	b := t.env.boot
	id, err := adminCreate(ctx, t.node.Base(), b.APIToken.Token, "/v1/admin/users", "agent",
		map[string]any{"email": "agent@bench.example", "name": "Bench Agent", "role": "agent", "password": agentPassword})
	if err != nil {
		return err
	}
	t.agentID = id
	return t.login(ctx)
}

// login logs the agent in again: an access token lasts 15 minutes.
func (t *timersBench) login(ctx context.Context) error {
	status, raw, err := t.call(ctx, http.MethodPost, "/v1/auth/login", "",
		map[string]string{"tenant_id": t.env.boot.Tenant.ID, "email": "agent@bench.example", "password": agentPassword})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("login: %d %s", status, raw)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil || tok.AccessToken == "" {
		return fmt.Errorf("login: no access token in %s", raw)
	}
	t.agent = tok.AccessToken
	return nil
}

// call sends body (nil: none) as JSON to path with token (empty: none) and
// returns the status and answer.
func (t *timersBench) call(ctx context.Context, method, path, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.node.Base()+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// expect sends a request and fails unless it is answered want.
func (t *timersBench) expect(ctx context.Context, want int, method, path, token string, body any) error {
	status, raw, err := t.call(ctx, method, path, token, body)
	if err != nil {
		return err
	}
	if status != want {
		return fmt.Errorf("%s %s: %d %s", method, path, status, raw)
	}
	return nil
}

// webhooks sends one chat message on each of n sessions prefix-000000...,
// each message id prefixed by what, and returns when each was answered 202.
func (t *timersBench) webhooks(ctx context.Context, prefix, what string, n int) ([]time.Time, error) {
	answered := make([]time.Time, n)
	err := parallel(ctx, n, t.o.concurrency, func(i int) error {
		session := fmt.Sprintf("%s-%06d", prefix, i)
		for attempt := 0; ; attempt++ {
			status, err := send(t.client, t.node.Base(), t.env.boot, what+"-"+session, session)
			if err == nil && status == http.StatusAccepted {
				answered[i] = time.Now()
				return nil
			}
			if attempt == 100 {
				return fmt.Errorf("chat webhook of %s never answered 202 (last %d, %v)", session, status, err)
			}
			// Not acknowledged: a chat platform sends it again.
			time.Sleep(10 * time.Millisecond)
		}
	})
	return answered, err
}

// conversations waits until the n conversations whose sessions match the
// LIKE pattern exist and returns their ids, in session order.
func (t *timersBench) conversations(ctx context.Context, pattern string, n int) ([]string, error) {
	var count int
	err := poll(ctx, timersWait, 100*time.Millisecond, func() (bool, error) {
		err := t.conn.QueryRow(ctx, `SELECT count(*) FROM inbox.conversations WHERE channel_account_id = $1 AND thread_key LIKE $2`,
			t.env.boot.ChatChannel.ID, pattern).Scan(&count)
		return count >= n, err
	})
	if errors.Is(err, errGaveUp) {
		return nil, fmt.Errorf("only %d of %d conversations %s created", count, n, pattern)
	}
	if err != nil {
		return nil, err
	}
	rows, err := t.conn.Query(ctx, `SELECT id::text FROM inbox.conversations WHERE channel_account_id = $1 AND thread_key LIKE $2 ORDER BY thread_key`,
		t.env.boot.ChatChannel.ID, pattern)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	if len(ids) != n {
		return nil, fmt.Errorf("%d conversations %s for %d sessions", len(ids), pattern, n)
	}
	return ids, nil
}

// assign has the agent take every conversation of ids.
func (t *timersBench) assign(ctx context.Context, ids []string) error {
	return parallel(ctx, len(ids), timersAgentClients, func(i int) error {
		return t.expect(ctx, http.StatusOK, http.MethodPost, "/v1/conversations/"+ids[i]+"/assign", t.agent, nil)
	})
}

// deferAll has the agent defer conversation ids[i] until until(i).
func (t *timersBench) deferAll(ctx context.Context, ids []string, until func(i int) time.Time) error {
	return parallel(ctx, len(ids), timersAgentClients, func(i int) error {
		return t.expect(ctx, http.StatusOK, http.MethodPost, "/v1/conversations/"+ids[i]+"/defer", t.agent,
			map[string]string{"until": until(i).UTC().Format(time.RFC3339Nano)})
	})
}

// countPending counts the pending timers due in [from, to): the phases'
// timers are told apart by their due times, on the fire loop's partial
// index, without scanning the million others.
func (t *timersBench) countPending(ctx context.Context, from, to time.Time) (int, error) {
	var n int
	err := t.conn.QueryRow(ctx, `SELECT count(*) FROM scheduler.timers WHERE fired_at IS NULL AND due_at >= $1 AND due_at < $2`, from, to).Scan(&n)
	return n, err
}

// waitPending waits until countPending(from, to) is want, and returns when.
func (t *timersBench) waitPending(ctx context.Context, what string, from, to time.Time, want int) (time.Time, error) {
	var n int
	err := poll(ctx, timersWait, timersPoll, func() (bool, error) {
		var err error
		n, err = t.countPending(ctx, from, to)
		return n == want, err
	})
	if errors.Is(err, errGaveUp) {
		return time.Time{}, fmt.Errorf("%s: %d timers pending, waited for %d", what, n, want)
	}
	return time.Now(), err
}

// seedPending inserts the background timers straight in SQL, in batches:
// wake-ups of conversations nobody knows (random ids), due a day to a
// month ahead, so that none comes due during the run. Through the API, a
// million deferrals take hours on a small machine; what the fire loop and
// the reconciliation see is the same: a table and its indexes that big.
func (t *timersBench) seedPending(ctx context.Context, res *TimersResult) error {
	res.Pending = t.o.timersPending
	if res.Pending == 0 {
		return nil
	}
	t.logf("seeding %d pending timers in SQL...", res.Pending)
	start := time.Now()
	const batch = 100000
	b := t.env.boot
	for from := 1; from <= res.Pending; from += batch {
		to := min(from+batch-1, res.Pending)
		_, err := t.conn.Exec(ctx, `INSERT INTO scheduler.timers (id, conversation_id, tenant_id, kind, due_at, command, key)
			SELECT 'wake/' || c || '/' || @sv::bigint, c, @tenant::uuid, 'wake', due,
			       jsonb_build_object('tenant_id', @tenant::text, 'conversation_id', c::text, 'kind', 'wake',
			           'expect', jsonb_build_object('state', 'deferred', 'state_version', @sv::bigint),
			           'due_at', to_char(due AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
			       convert_to(@tenant::text || '/chat/' || @chat::text || '/pending-' || g, 'UTF8')
			FROM (SELECT g, gen_random_uuid() AS c, now() + interval '1 day' + random() * interval '29 days' AS due
			      FROM generate_series(@from::int, @to::int) g) x`,
			pgx.NamedArgs{"tenant": b.Tenant.ID, "chat": b.ChatChannel.ID, "from": from, "to": to, "sv": timersStateVersion})
		if err != nil {
			return fmt.Errorf("seed pending timers %d-%d: %w", from, to, err)
		}
	}
	if _, err := t.conn.Exec(ctx, `ANALYZE scheduler.timers`); err != nil {
		return err
	}
	res.PendingSeedSeconds = time.Since(start).Seconds()
	t.logf("%d pending timers seeded in %.1f s", res.Pending, res.PendingSeedSeconds)
	return nil
}

// reschedule measures a waiting message's new hours applied to every
// conversation waiting in new: Reschedule conversations created by chat
// webhooks under a waiting message of timersHoursBefore, then one PATCH to
// timersHoursAfter; the time from its answer until every timer moved.
// The waiting message is unassigned at the end, which cancels its timers.
func (t *timersBench) reschedule(ctx context.Context, res *TimersResult) error {
	n := t.o.timersReschedule
	res.Reschedule = n
	token := t.env.boot.APIToken.Token
	base := t.node.Base()
	wm, err := adminCreate(ctx, base, token, "/v1/admin/waiting-messages", "waiting message", map[string]any{
		"name": "Bench waiting", "subject": "Your request", "body": "We are still on it, {{customer_name}}.",
		"hours": map[string]float64{"new": timersHoursBefore}})
	if err != nil {
		return err
	}
	// Automatic messages go out on email only unless chat is enabled.
	if err := t.expect(ctx, http.StatusOK, http.MethodPut, "/v1/admin/automation", token,
		map[string]any{"channels": map[string]bool{"chat": true}, "waiting_message_id": wm}); err != nil {
		return err
	}
	t.logf("reschedule: %d conversations waiting in new under a waiting message of %.0f hours...", n, timersHoursBefore)
	start := time.Now()
	if _, err := t.webhooks(ctx, "wait", "wait", n); err != nil {
		return err
	}
	// Their timers, due timersHoursBefore after each conversation entered
	// new.
	hour := func(h float64) time.Duration { return time.Duration(h * float64(time.Hour)) }
	before, after := start.Add(hour(timersHoursBefore)-time.Minute), time.Now().Add(hour(timersHoursBefore)+time.Hour)
	if _, err := t.waitPending(ctx, "waiting-message timers", before, after, n); err != nil {
		return err
	}
	moved, movedEnd := start.Add(hour(timersHoursAfter)-time.Minute), time.Now().Add(hour(timersHoursAfter)+time.Hour)
	t.logf("reschedule: %d waiting-message timers set in %.1f s; PATCH to %.0f hours", n, time.Since(start).Seconds(), timersHoursAfter)

	t0 := time.Now()
	if err := t.expect(ctx, http.StatusOK, http.MethodPatch, "/v1/admin/waiting-messages/"+wm, token,
		map[string]any{"hours": map[string]float64{"new": timersHoursAfter}}); err != nil {
		return err
	}
	answered := time.Now()
	res.PatchMs = float64(answered.Sub(t0)) / float64(time.Millisecond)
	var got int
	err = poll(ctx, timersWait, timersPoll, func() (bool, error) {
		var err error
		got, err = t.countPending(ctx, moved, movedEnd)
		return got == n, err
	})
	done := time.Now()
	res.RescheduleLeft = n - got
	if err != nil && !errors.Is(err, errGaveUp) {
		return err
	}
	res.RescheduleSeconds = done.Sub(answered).Seconds()
	res.ReschedulePer = float64(done.Sub(answered)) / float64(time.Millisecond) / float64(n)
	t.logf("reschedule: %d of %d timers moved %.2f s after the PATCH's answer (%.0f ms)", got, n, res.RescheduleSeconds, res.PatchMs)

	// Back to no waiting message: the timers go, and the conversations
	// that come back to new later get none.
	if err := t.expect(ctx, http.StatusOK, http.MethodPut, "/v1/admin/automation", token, map[string]any{}); err != nil {
		return err
	}
	_, err = t.waitPending(ctx, "waiting-message timers after the waiting message was unassigned", before, movedEnd, 0)
	return err
}

// steady measures lateness at a steady rate, through the real path:
// conversations created by webhooks, taken and deferred by the agent, due
// o.timersRate per second from a start far enough ahead that every
// deferral is in before the first is due.
func (t *timersBench) steady(ctx context.Context, res *TimersResult) error {
	n, rate := t.o.timersSteady, t.o.timersRate
	res.Steady, res.SteadyRate = n, rate
	if err := t.login(ctx); err != nil {
		return err
	}
	t.logf("steady: %d conversations created, taken and deferred through the API...", n)
	start := time.Now()
	if _, err := t.webhooks(ctx, "steady", "steady", n); err != nil {
		return err
	}
	ids, err := t.conversations(ctx, "steady-%", n)
	if err != nil {
		return err
	}
	assignStart := time.Now()
	if err := t.assign(ctx, ids); err != nil {
		return err
	}
	assigned := time.Since(assignStart)
	// Deferring costs about what taking did (a little less: no lease);
	// the scheduler follows within a second or two. The first wake is due
	// after both, with room: the measurement starts on a quiet binary.
	interval := time.Second / time.Duration(rate)
	first := time.Now().Add(assigned + 5*time.Second).Truncate(time.Millisecond)
	last := first.Add(time.Duration(n-1) * interval)
	due := func(i int) time.Time { return first.Add(time.Duration(i) * interval) }
	if err := t.deferAll(ctx, ids, due); err != nil {
		return err
	}
	set, err := t.waitPending(ctx, "steady wake timers", first, last.Add(time.Millisecond), n)
	if err != nil {
		return err
	}
	res.SteadySetupSeconds = set.Sub(start).Seconds()
	// What the real path's timers expect, for the burst's seeded ones.
	if err := t.conn.QueryRow(ctx, `SELECT (command->'expect'->>'state_version')::bigint FROM scheduler.timers
		WHERE fired_at IS NULL AND due_at >= $1 AND due_at <= $2 LIMIT 1`, first, last).Scan(&t.stateVersion); err != nil {
		return fmt.Errorf("read the state version of a wake timer: %w", err)
	}
	res.SteadyAheadSeconds = first.Sub(set).Seconds()
	t.logf("steady: %d wake timers set in %.1f s, %.1f s before the first is due; due at %d/s for %.0f s",
		n, res.SteadySetupSeconds, res.SteadyAheadSeconds, rate, last.Sub(first).Seconds())

	before, err := t.metrics(ctx)
	if err != nil {
		return err
	}
	if err := t.waitApplied(ctx, ids, last); err != nil {
		return err
	}
	after, err := t.metrics(ctx)
	if err != nil {
		return err
	}
	res.SteadyFireMean, res.SteadyFireP99 = after.delta(before, fireLateness)
	var lat []time.Duration
	res.SteadyApplied, res.SteadyOther, res.SteadyMissing, lat, err = t.outcomes(ctx, ids)
	if err != nil {
		return err
	}
	res.SteadyP50, res.SteadyP99 = p50p99(lat)
	res.SteadyMax = percentile(lat, 1)
	var span float64
	if err := t.conn.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM max(applied_at) - min(applied_at)), 0)
		FROM inbox.applied_commands WHERE conversation_id = ANY($1::uuid[]) AND kind = 'wake'`, ids).Scan(&span); err != nil {
		return err
	}
	if span > 0 {
		res.SteadyRateSeen = float64(res.SteadyApplied-1) / span
	}
	t.logf("steady: %d of %d applied, lateness p50 %.1f ms p99 %.1f ms max %.1f ms", res.SteadyApplied, n, res.SteadyP50, res.SteadyP99, res.SteadyMax)
	return nil
}

// waitApplied waits until the inbox recorded a wake for each of ids, the
// last of them due at last; it gives up timersWait after that. It looks
// only once the last is due: the figures come from the recorded rows, and
// queries during the measurement would take the binary's CPU.
func (t *timersBench) waitApplied(ctx context.Context, ids []string, last time.Time) error {
	select {
	case <-time.After(time.Until(last)):
	case <-ctx.Done():
		return ctx.Err()
	}
	var got int
	err := poll(ctx, timersWait, 200*time.Millisecond, func() (bool, error) {
		err := t.conn.QueryRow(ctx, `SELECT count(*) FROM inbox.applied_commands WHERE conversation_id = ANY($1::uuid[]) AND kind = 'wake'`, ids).Scan(&got)
		return got >= len(ids), err
	})
	if errors.Is(err, errGaveUp) {
		t.logf("only %d of %d wakes recorded %s after the last was due", got, len(ids), timersWait)
		return nil // counted as never recorded
	}
	return err
}

// outcomes reads the wakes of ids the inbox recorded: how many applied,
// with another outcome, never recorded, and the lateness of the applied.
func (t *timersBench) outcomes(ctx context.Context, ids []string) (applied, other, missing int, lat []time.Duration, err error) {
	rows, err := t.conn.Query(ctx, `SELECT outcome, extract(epoch FROM applied_at - due_at)::float8
		FROM inbox.applied_commands WHERE conversation_id = ANY($1::uuid[]) AND kind = 'wake'`, ids)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	defer rows.Close()
	recorded := 0
	for rows.Next() {
		var (
			outcome string
			late    *float64
		)
		if err := rows.Scan(&outcome, &late); err != nil {
			return 0, 0, 0, nil, err
		}
		recorded++
		if outcome != "applied" || late == nil {
			other++
			continue
		}
		applied++
		lat = append(lat, time.Duration(*late*float64(time.Second)))
	}
	return applied, other, len(ids) - recorded, lat, rows.Err()
}

// cancel measures cancellations: conversations deferred far ahead through
// the API, then each re-opened by a customer message, which takes it back
// to new and cancels its wake-up.
func (t *timersBench) cancel(ctx context.Context, res *TimersResult) error {
	n := t.o.timersCancel
	res.Cancel = n
	if err := t.login(ctx); err != nil {
		return err
	}
	t.logf("cancel: %d conversations created, taken and deferred %s ahead through the API...", n, timersCancelAhead)
	if _, err := t.webhooks(ctx, "cancel", "cancel", n); err != nil {
		return err
	}
	ids, err := t.conversations(ctx, "cancel-%", n)
	if err != nil {
		return err
	}
	if err := t.assign(ctx, ids); err != nil {
		return err
	}
	base := time.Now().Add(timersCancelAhead).Truncate(time.Second)
	if err := t.deferAll(ctx, ids, func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }); err != nil {
		return err
	}
	from, to := base, base.Add(time.Duration(n)*time.Second)
	if _, err := t.waitPending(ctx, "cancel phase's wake timers", from, to, n); err != nil {
		return err
	}
	// The customers write again; each conversation's timer is watched
	// until it goes.
	t0 := time.Now()
	var (
		answered []time.Time
		sendErr  error
		sent     = make(chan struct{})
	)
	go func() {
		defer close(sent)
		answered, sendErr = t.webhooks(ctx, "cancel", "again", n)
	}()
	gone := make([]time.Time, n)
	left := n
	deadline := time.Now().Add(timersWait)
	for left > 0 && time.Now().Before(deadline) {
		rows, err := t.conn.Query(ctx, `SELECT conversation_id::text FROM scheduler.timers WHERE fired_at IS NULL AND due_at >= $1 AND due_at < $2`, from, to)
		if err != nil {
			return err
		}
		still, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		now := time.Now()
		pending := make(map[string]bool, len(still))
		for _, id := range still {
			pending[id] = true
		}
		left = 0
		for i, id := range ids {
			switch {
			case pending[id]:
				left++
			case gone[i].IsZero():
				gone[i] = now
			}
		}
		if left > 0 {
			time.Sleep(timersPoll)
		}
	}
	<-sent
	if sendErr != nil {
		return sendErr
	}
	var last time.Time
	var lat []time.Duration
	for i := range ids {
		if gone[i].IsZero() {
			continue
		}
		if gone[i].After(last) {
			last = gone[i]
		}
		lat = append(lat, max(0, gone[i].Sub(answered[i])))
	}
	var sendEnd time.Time
	for _, a := range answered {
		if a.After(sendEnd) {
			sendEnd = a
		}
	}
	res.CancelLeft = left
	res.CancelSendSeconds = sendEnd.Sub(t0).Seconds()
	res.CancelSeconds = last.Sub(t0).Seconds()
	res.CancelPer = float64(last.Sub(t0)) / float64(time.Millisecond) / float64(n)
	res.CancelP50, res.CancelP99 = p50p99(lat)
	t.logf("cancel: %d of %d timers gone %.2f s after the first message (messages sent in %.2f s)", n-left, n, res.CancelSeconds, res.CancelSendSeconds)
	return nil
}

// burst measures a burst of timers due at the same instant T. Through the
// API it would take three requests a conversation; it is seeded in SQL
// instead, both sides as the real path leaves them: the inbox's deferred
// conversations (contact, chat channel, taken by the agent, then
// deferred: version and state version 3), the scheduler's view of each,
// and its wake timer, with the command the rules would derive. T is a few
// seconds after the seeding commits, in one transaction, so that the fire
// loop sees every timer at once.
func (t *timersBench) burst(ctx context.Context, res *TimersResult) error {
	n := t.o.timersBurst
	res.Burst = n
	b := t.env.boot
	// Seeding takes five rows per timer, in tables with more indexes than
	// the timers'; the pending seed's rate says how fast this machine
	// inserts, and a burst row took 5.5 to 7.6 times a pending one here.
	lead := 5 * time.Second
	if res.Pending > 0 && res.PendingSeedSeconds > 0 {
		lead += time.Duration(float64(n) * 12 * res.PendingSeedSeconds / float64(res.Pending) * float64(time.Second))
	} else {
		lead += time.Duration(n) * 100 * time.Microsecond
	}
	start := time.Now()
	due := start.Add(lead).UTC().Truncate(time.Millisecond)
	t.logf("burst: seeding %d deferred conversations and their wake timers in SQL, all due at %s (in %.1f s)...", n, due.Format("15:04:05.000"), lead.Seconds())
	args := pgx.NamedArgs{"tenant": b.Tenant.ID, "chat": b.ChatChannel.ID, "agent": t.agentID, "n": n,
		"due": due, "due_json": due.Format(time.RFC3339Nano), "sv": t.stateVersion}
	steps := []string{
		`INSERT INTO inbox.contacts (id, tenant_id, name, source, created_at)
		 SELECT md5('burst-contact' || g)::uuid, @tenant::uuid, 'Burst customer ' || g, 'chat', now() FROM generate_series(1, @n::int) g`,
		`INSERT INTO inbox.contact_identities (tenant_id, channel, identity, contact_id)
		 SELECT @tenant::uuid, 'chat', 'burst-' || g, md5('burst-contact' || g)::uuid FROM generate_series(1, @n::int) g`,
		// Its language detected, taken, then deferred by the agent
		// (timersStateVersion): no assignee, the agent as the last one,
		// who gets it back if free.
		`INSERT INTO inbox.conversations (id, tenant_id, contact_id, channel, channel_account_id, thread_key, state, previous_state,
		     started_at, last_message_at, assignee_ids, last_agent_id, language, unread, last_writer, deferred_until, updated_at,
		     version, state_version, state_since)
		 SELECT md5('burst-conv' || g)::uuid, @tenant::uuid, md5('burst-contact' || g)::uuid, 'chat', @chat::uuid, 'burst-' || g,
		        'deferred', 'assigned', now(), now(), '{}', @agent::uuid, 'fr', true, 'customer', @due::timestamptz, now(),
		        @sv::bigint, @sv::bigint, now()
		 FROM generate_series(1, @n::int) g`,
		`INSERT INTO scheduler.conversations (id, tenant_id, key, channel, state, version, state_version, state_since, deferred_until,
		     activity_version, activity_at, ack_version)
		 SELECT md5('burst-conv' || g)::uuid, @tenant::uuid, convert_to(@tenant::text || '/chat/' || @chat::text || '/burst-' || g, 'UTF8'),
		        'chat', 'deferred', @sv::bigint, @sv::bigint, now(), @due::timestamptz, @sv::bigint, now(), 1
		 FROM generate_series(1, @n::int) g`,
		`INSERT INTO scheduler.timers (id, conversation_id, tenant_id, kind, due_at, command, key)
		 SELECT 'wake/' || c || '/' || @sv::bigint, c, @tenant::uuid, 'wake', @due::timestamptz,
		        jsonb_build_object('tenant_id', @tenant::text, 'conversation_id', c::text, 'kind', 'wake',
		            'expect', jsonb_build_object('state', 'deferred', 'state_version', @sv::bigint), 'due_at', @due_json::text),
		        convert_to(@tenant::text || '/chat/' || @chat::text || '/burst-' || g, 'UTF8')
		 FROM (SELECT g, md5('burst-conv' || g)::uuid AS c FROM generate_series(1, @n::int) g) x`,
		// What Reconcile does for a timer due soon: wake the fire loop.
		`SELECT pg_notify('scheduler_timers', '')`,
	}
	err := pgx.BeginFunc(ctx, t.conn, func(tx pgx.Tx) error {
		for i, sql := range steps {
			if _, err := tx.Exec(ctx, sql, args); err != nil {
				return fmt.Errorf("seed step %d: %w", i+1, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	committed := time.Now()
	res.BurstSeedSeconds = committed.Sub(start).Seconds()
	res.BurstAheadSeconds = due.Sub(committed).Seconds()
	if committed.After(due) {
		return fmt.Errorf("the seeding took %.1f s, past the due time %.1f s ahead: the figures would count it", res.BurstSeedSeconds, lead.Seconds())
	}
	t.logf("burst: seeded in %.1f s, %.1f s before the due time", res.BurstSeedSeconds, res.BurstAheadSeconds)

	before, err := t.metrics(ctx)
	if err != nil {
		return err
	}
	// The last publication is seen on the fire loop's partial index (a
	// cheap look, every timersPoll); the inbox's count, dearer, every
	// half second: the figures come from the rows it recorded.
	var (
		got         int
		published   time.Time
		lastCounted time.Time
	)
	err = poll(ctx, time.Until(due)+timersWait, timersPoll, func() (bool, error) {
		if published.IsZero() {
			var unfired bool
			if err := t.conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM scheduler.timers WHERE fired_at IS NULL AND due_at = $1)`, due).Scan(&unfired); err != nil {
				return false, err
			}
			if !unfired {
				published = time.Now()
			}
			return false, nil
		}
		if time.Since(lastCounted) < 500*time.Millisecond {
			return false, nil
		}
		lastCounted = time.Now()
		err := t.conn.QueryRow(ctx, `SELECT count(*) FROM inbox.applied_commands WHERE applied_at >= $1 AND due_at = $1 AND kind = 'wake'`, due).Scan(&got)
		return got >= n, err
	})
	if errors.Is(err, errGaveUp) {
		t.logf("burst: only %d of %d wakes recorded %s after the due time", got, n, timersWait)
	} else if err != nil {
		return err
	}
	if !published.IsZero() {
		res.BurstPublishedSeconds = published.Sub(due).Seconds()
	}
	after, err := t.metrics(ctx)
	if err != nil {
		return err
	}
	res.BurstFireMean, res.BurstFireP99 = after.delta(before, fireLateness)
	res.BurstApplyBatches, res.BurstApplyBusySeconds = after.busy(before, processDuration+"/switchboard-inbox-commands")
	_, res.BurstFollowBusySecs = after.busy(before, processDuration+"/switchboard-scheduler")
	var last, p50, p99 float64
	var recorded int
	err = t.conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE outcome = 'applied'),
			coalesce(extract(epoch FROM max(applied_at) - $1), 0),
			coalesce(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY applied_at - due_at)), 0),
			coalesce(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY applied_at - due_at)), 0)
		FROM inbox.applied_commands WHERE applied_at >= $1 AND due_at = $1 AND kind = 'wake'`, due).
		Scan(&recorded, &res.BurstApplied, &last, &p50, &p99)
	if err != nil {
		return fmt.Errorf("read the burst's lateness: %w", err)
	}
	res.BurstOther, res.BurstMissing = recorded-res.BurstApplied, n-recorded
	res.BurstLastSeconds, res.BurstP50, res.BurstP99 = last, p50, p99
	if last > 0 {
		res.BurstRate = float64(res.BurstApplied) / last
	}
	t.logf("burst: %d of %d applied, the last %.2f s after the due time (%.0f/s); the last published %.2f s after it",
		res.BurstApplied, n, last, res.BurstRate, res.BurstPublishedSeconds)
	return nil
}

// The histograms read from the binary's /metrics.
const (
	fireLateness    = "switchboard_scheduler_fire_lateness_seconds"
	commandLateness = "switchboard_inbox_command_lateness_seconds"
	// processDuration is per consumer group: the snapshot's key is the
	// name, a slash and the group.
	processDuration = "messaging_process_duration_seconds"
)

// timersGroups are the consumer groups whose batches the scenario times.
var timersGroups = []string{"switchboard-inbox-commands", "switchboard-scheduler"}

// histogram is a Prometheus histogram's cumulative buckets, sum and count.
type histogram struct {
	buckets map[float64]float64 // upper bound: cumulative count
	sum     float64
	count   float64
}

// metricsSnapshot is histograms of /metrics, by name.
type metricsSnapshot map[string]*histogram

// metrics reads the binary's histograms of wake commands, and of the
// batches of timersGroups.
func (t *timersBench) metrics(ctx context.Context) (metricsSnapshot, error) {
	status, raw, err := t.call(ctx, http.MethodGet, "/metrics", "", nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", status)
	}
	s := parseHistograms(raw, `kind="wake"`, fireLateness, commandLateness)
	for _, g := range timersGroups {
		if h := parseHistograms(raw, `messaging_consumer_group_name="`+g+`"`, processDuration)[processDuration]; h != nil {
			s[processDuration+"/"+g] = h
		}
	}
	return s, nil
}

// parseHistograms reads the histograms names from a Prometheus text
// exposition, keeping the series whose labels contain label.
func parseHistograms(raw []byte, label string, names ...string) metricsSnapshot {
	out := metricsSnapshot{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.Contains(line, label) {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		for _, name := range names {
			rest, ok := strings.CutPrefix(line, name)
			if !ok {
				continue
			}
			h := out[name]
			if h == nil {
				h = &histogram{buckets: map[float64]float64{}}
				out[name] = h
			}
			switch {
			case strings.HasPrefix(rest, "_bucket{"):
				i := strings.Index(rest, `le="`)
				if i < 0 {
					continue
				}
				le := rest[i+4:]
				le = le[:strings.IndexByte(le, '"')]
				bound := math.Inf(1)
				if le != "+Inf" {
					if bound, err = strconv.ParseFloat(le, 64); err != nil {
						continue
					}
				}
				h.buckets[bound] += v
			case strings.HasPrefix(rest, "_sum"):
				h.sum += v
			case strings.HasPrefix(rest, "_count"):
				h.count += v
			}
		}
	}
	return out
}

// busy returns how many observations of name were made since before, and
// their total in seconds: for a batch handler, its batches and the time
// it spent in them.
func (s metricsSnapshot) busy(before metricsSnapshot, name string) (int, float64) {
	a, b := s[name], before[name]
	if a == nil {
		return 0, 0
	}
	if b == nil {
		b = &histogram{}
	}
	return int(a.count - b.count), a.sum - b.sum
}

// delta returns the mean, in milliseconds, of the observations of name
// since before, and the upper bound of the bucket holding their 99th
// percentile. When that bucket is the open one above the largest bound,
// p99 is the largest finite bound negated: "more than |p99|", which a JSON
// report can carry where +Inf cannot.
func (s metricsSnapshot) delta(before metricsSnapshot, name string) (mean, p99 float64) {
	a, b := s[name], before[name]
	if a == nil {
		return 0, 0
	}
	if b == nil {
		b = &histogram{buckets: map[float64]float64{}}
	}
	count := a.count - b.count
	if count <= 0 {
		return 0, 0
	}
	mean = 1000 * (a.sum - b.sum) / count
	bounds := make([]float64, 0, len(a.buckets))
	for le := range a.buckets {
		bounds = append(bounds, le)
	}
	slices.Sort(bounds)
	largest := 0.0
	for _, le := range bounds {
		if math.IsInf(le, 1) {
			break
		}
		largest = le
		if a.buckets[le]-b.buckets[le] >= 0.99*count {
			return mean, 1000 * le
		}
	}
	return mean, -1000 * largest
}

// p99Bucket describes a p99 from delta: the bucket bound it lies under, or
// the largest bound it exceeds.
func p99Bucket(ms float64) string {
	if ms < 0 {
		return fmt.Sprintf("p99 > %.0f ms (above the scheduler's largest histogram bucket)", -ms)
	}
	return fmt.Sprintf("p99 <= %.0f ms (the scheduler's histogram bucket)", ms)
}
