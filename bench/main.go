// Command bench measures Switchboard on this machine, beside the machine's
// raw ceilings measured in the same run, and prints medians over several
// runs: absolute figures differ from machine to machine, ratios hold.
//
// Scenario "chat": N signed chat webhooks at concurrency C into the
// all-in-one binary (embedded Kafka and Redis, the local PostgreSQL), then
// throughput in messages stored per second and the latency from webhook
// accept to stored row, read from the stored rows themselves
// (messages.received_at and stored_at). Ceiling: pgbench's single-row
// INSERT rate at the same concurrency, and redis-benchmark's SET rate.
//
// Scenario "list": the inbox's conversation lists and full-text search on
// a tenant of a large history, loaded straight in SQL.
//
// Scenario "email": an IMAP server in this process, on 127.0.0.1 (go-imap's
// in-memory one). A backfill of mails waits in its INBOX before the mailbox
// is created through the admin API: mails stored per second from that
// creation to the last stored row. Then mails appended one by one while the
// connector waits in IDLE: latency from the APPEND to the stored row.
//
// Scenario "sms": Twilio's messaging webhooks, signed with an SMS account
// created through the admin API, to 1,000 customers' conversations. First
// -sms-n of them at concurrency -c as fast as they are answered: webhooks
// answered 200 per second and the time to that answer. Then -sms-rate per
// second for -sms-duration, paced whatever the answers (open loop): the
// p99 time from each webhook's due time to its 200 answer, against the
// target of 50 ms at 2,000 requests/s (Twilio gives up after 15 s). Last,
// every MessageSid answered 200 must be stored once in inbox.messages.
//
// Scenario "timers": the scheduler and the inbox, beside -timers-pending
// (1,000,000) pending timers seeded straight in SQL into scheduler.timers
// (through the API that many would take hours here), due a day to a month
// ahead so that none comes due during the measurements. Through the real
// path (chat webhooks, an agent who takes and defers through the API, the
// scheduler firing wake commands that the inbox applies): -timers-n (6,000)
// conversations deferred until times -timers-rate (200) per second apart,
// and the lateness of their wakes at the inbox (applied_at - due_at of
// inbox.applied_commands) p50/p99/max, against the target p99 <= 1 s, goal
// 250 ms. A burst of -timers-burst (50,000) wakes due at the same instant,
// both sides seeded in SQL (the inbox's deferred conversations, the
// scheduler's views and timers): the time from that instant until the
// last is applied, and until the last is published. Cancels:
// -timers-cancel (2,000) conversations deferred far ahead, each re-opened
// by a customer message, until their timers are gone. Reschedules:
// -timers-reschedule (10,000) conversations waiting in new under a
// waiting message, one PATCH of its hours, until every timer has its new
// due time. -timers-runs (1: a run takes about three minutes on two cores)
// runs on fresh databases, medians reported. Ceilings: pgbench's
// single-row INSERT rate and redis-benchmark's SET rate, measured in the
// same run.
//
// Scenario "routing": push routing. -routing-agents (10,000) agents of
// -routing-capacity (10), members of one push queue, created through the
// admin API, their sessions minted in SQL, set online through the API;
// the bench keeps their heartbeats fresh in the presence set itself. The
// router's state is in -routing-redis (the local Redis). New conversations
// by chat webhooks into the queue: -routing-rate (50) per second for
// -routing-duration (15 s), for the time from each conversation's created
// event to its offer arriving on agents' streams (GET /v1/stream, read
// for -routing-streams agents), against the target p99 <= 100 ms, goal
// 50 ms; then the rest of -routing-conversations (2,000 in all) as fast
// as answered, a backlog, for the decisions per second. Also the router's
// share from its histogram and busy time, and Redis's script time and
// commands per offer. The 100,000 conversations are
// -routing-conversations 100000: far longer than a minute here (see the
// README).
//
// Scenario "mailparse": the email parser alone, over its test corpus
// (connectors/email/internal/mailparse/testdata/corpus), through go test's
// BenchmarkCorpus: the median and p99 across the mails of the time one mail
// takes, beside the same figures for the parser of commit dc2acc1 measured
// once on the reference machine, against the target of at most 10% more.
//
// Scenario "chatout": agents' replies delivered to a chat channel's
// endpoint, a receiver in this process on 127.0.0.1 that verifies each
// signature and answers 204. Chat conversations by webhook, taken by one
// agent. First -chatout-n (2,000) replies in -chatout-conversations (500)
// conversations through the API at concurrency -c as fast as answered,
// each conversation's one after the other (the agent takes it back before
// each but the first): replies delivered per second (first reply sent to
// last 2xx), and the time from each reply's API answer to the endpoint's
// 2xx of its delivery with the machine saturated. Then -chatout-rate (50)
// replies per second for -chatout-duration (10 s), each to a conversation
// of its own, sent on schedule: the same time, p50/p99/max. Duplicates,
// unsigned and lost deliveries are counted. -chatout-runs (3) runs on
// fresh databases, medians reported.
//
// Scenario "ratelimit": tenant B's GET
// /v1/conversations at -ratelimit-b-rate (100) a second, its p50 and p99
// alone, then while tenant A's token floods the same route from
// -ratelimit-flooders (16) senders, with the API rates on (every token at
// -ratelimit-token-rate, 200 a second) and off; also what A's flood got.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

type options struct {
	binary      string
	adminURL    string
	n           int
	concurrency int
	perConv     int
	runs        int
	pgbenchTime time.Duration
	out         string
	addr        string
	extraArgs   string
	scenarios   string

	listConversations   int
	listPerConversation int
	listQueries         int

	emailMails     int
	emailIdleMails int

	smsN        int
	smsRate     int
	smsDuration time.Duration

	timersPending    int
	timersSteady     int
	timersRate       int
	timersBurst      int
	timersCancel     int
	timersReschedule int
	timersRuns       int

	routingAgents        int
	routingCapacity      int
	routingConversations int
	routingRate          int
	routingDuration      time.Duration
	routingStreams       int
	routingRedis         string
	routingRuns          int
	memoryN              int
	memoryIdle           time.Duration

	chatOutN             int
	chatOutConversations int
	chatOutRate          int
	chatOutDuration      time.Duration
	chatOutRuns          int

	mailparseModule    string
	mailparseRuns      int
	mailparseBenchtime string
	rateLimitN         int
	rateLimitBRate     int
	rateLimitFlooders  int
	rateLimitTokenRate int
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/switchboard", "The switchboard binary to measure.")
	flag.StringVar(&o.adminURL, "database-url", testkit.DefaultDatabaseURL, "A PostgreSQL URL with the right to create databases; each run gets a fresh one.")
	flag.IntVar(&o.n, "n", 20000, "Chat webhooks per run.")
	flag.IntVar(&o.concurrency, "c", 64, "Concurrent webhook senders (and pgbench clients).")
	flag.IntVar(&o.perConv, "per-conversation", 4, "Messages per conversation.")
	flag.IntVar(&o.runs, "runs", 3, "Runs of each measurement; the medians are reported.")
	flag.DurationVar(&o.pgbenchTime, "pgbench-time", 10*time.Second, "Duration of each pgbench run.")
	flag.StringVar(&o.out, "out", "", "Also write the results as JSON to this file.")
	flag.StringVar(&o.addr, "addr", "", "HTTP address of the measured binary; empty picks a free port.")
	flag.StringVar(&o.scenarios, "scenarios", "chat,list,email,sms,timers,routing,memory,chatout,ratelimit,mailparse", "Scenarios to run, comma-separated: chat (webhook to stored row), list (the inbox's lists on a large tenant), email (IMAP mail to stored row), sms (Twilio webhooks answered, as fast as possible and paced), timers (the scheduler's wake-ups applied by the inbox, at a steady rate and in a burst, beside a million pending; cancels and reschedules), routing (new conversations pushed to thousands of online agents: creation to offer on the agent's stream, decisions per second), memory (the all-in-one process's resident memory idle and after -memory-n messages, with the embedded broker trimming and keeping everything), chatout (agents' replies delivered to a chat channel's endpoint: replies per second, reply answer to the endpoint's 2xx), ratelimit (one tenant's latency alone and while another tenant's token floods the API, with the API rates on and off), mailparse (the email parser's time per mail over its test corpus, beside the parser of before).")
	flag.IntVar(&o.listConversations, "list-conversations", 100000, "Conversations of the list scenario's tenant.")
	flag.IntVar(&o.listPerConversation, "list-messages-per-conversation", 10, "Messages per conversation in the list scenario.")
	flag.IntVar(&o.listQueries, "list-queries", 200, "Measured requests per list query.")
	flag.IntVar(&o.emailMails, "email-mails", 10000, "Mails waiting in the IMAP folder before its mailbox is created, in the email scenario's backfill.")
	flag.IntVar(&o.emailIdleMails, "email-idle-mails", 200, "Mails appended one by one after the backfill, while the connector waits in IDLE, for the delivery latency.")
	flag.IntVar(&o.smsN, "sms-n", 20000, "Signed Twilio webhooks of the sms scenario's throughput phase, sent at concurrency -c as fast as they are answered.")
	flag.IntVar(&o.smsRate, "sms-rate", 2000, "Webhooks per second of the sms scenario's paced phase, sent on schedule whatever the answers; its p99 answer time is held to 50 ms.")
	flag.DurationVar(&o.smsDuration, "sms-duration", 10*time.Second, "Duration of the sms scenario's paced phase.")
	flag.IntVar(&o.timersPending, "timers-pending", 1000000, "Pending timers of the timers scenario, seeded in SQL and due a day to a month ahead: never due during the run.")
	flag.IntVar(&o.timersSteady, "timers-n", 6000, "Conversations the timers scenario creates, takes and defers through the API, due -timers-rate per second apart, for the lateness of their wakes.")
	flag.IntVar(&o.timersRate, "timers-rate", 200, "Wakes due per second in the timers scenario's steady phase.")
	flag.IntVar(&o.timersBurst, "timers-burst", 50000, "Wakes due at the same instant in the timers scenario's burst, seeded in SQL on both sides.")
	flag.IntVar(&o.timersCancel, "timers-cancel", 2000, "Deferred conversations the timers scenario re-opens by a customer message each, cancelling their wake-ups.")
	flag.IntVar(&o.timersReschedule, "timers-reschedule", 10000, "Conversations waiting in new whose waiting-message timers one PATCH of the waiting message's hours moves, in the timers scenario.")
	flag.IntVar(&o.timersRuns, "timers-runs", 1, "Runs of the timers scenario (each on a fresh database with its pending timers); the medians are reported.")
	flag.IntVar(&o.routingAgents, "routing-agents", 10000, "Agents of the routing scenario: created through the admin API, sessions minted in SQL, set online through the API, heartbeats kept fresh in Redis by the bench.")
	flag.IntVar(&o.routingCapacity, "routing-capacity", 10, "Capacity of each agent of the routing scenario (conversations at once, 1 to 100).")
	flag.IntVar(&o.routingConversations, "routing-conversations", 2000, "New chat conversations of the routing scenario in all, each offered to an agent as it arrives: -routing-rate per second for -routing-duration, the rest as fast as they are answered at -c (the backlog). At most -routing-agents x -routing-capacity; the issue's full size is 100000.")
	flag.IntVar(&o.routingRate, "routing-rate", 50, "Webhooks per second of the routing scenario's paced phase, sent on schedule whatever the answers, for the latency from creation to offer.")
	flag.DurationVar(&o.routingDuration, "routing-duration", 15*time.Second, "Duration of the routing scenario's paced phase; 0 leaves only the backlog.")
	flag.IntVar(&o.routingStreams, "routing-streams", 2, "Agents of the routing scenario whose GET /v1/stream the bench reads; each sees every event of the queue, and times every offer.")
	flag.StringVar(&o.routingRedis, "routing-redis", "redis://127.0.0.1:6379/15", "Redis of the binary in the routing scenario (-redis.url), where the router keeps its state and the bench refreshes heartbeats; the tenant's keys are removed afterwards. Empty: the embedded miniredis, with a presence window longer than the run instead of refreshed heartbeats.")
	flag.IntVar(&o.routingRuns, "routing-runs", 1, "Runs of the routing scenario (each on a fresh database); the medians are reported.")
	flag.IntVar(&o.memoryN, "memory-n", 60000, "Chat messages of the memory scenario, sent at -c after its idle measurement.")
	flag.DurationVar(&o.memoryIdle, "memory-idle", 20*time.Second, "How long the memory scenario's process sits idle before its idle memory is read.")
	flag.IntVar(&o.chatOutN, "chatout-n", 2000, "Agent replies of the chatout scenario, sent through the API at concurrency -c and delivered to a local chat endpoint.")
	flag.IntVar(&o.chatOutConversations, "chatout-conversations", 500, "Chat conversations the chatout scenario's replies are spread over; each conversation's replies go one after the other, in order.")
	flag.IntVar(&o.chatOutRate, "chatout-rate", 50, "Replies per second of the chatout scenario's paced phase, each to a conversation of its own, sent on schedule whatever the answers, for the time from the reply's answer to the endpoint's 2xx.")
	flag.DurationVar(&o.chatOutDuration, "chatout-duration", 10*time.Second, "Duration of the chatout scenario's paced phase.")
	flag.IntVar(&o.chatOutRuns, "chatout-runs", 3, "Runs of the chatout scenario (each on a fresh database); the medians are reported.")
	flag.StringVar(&o.mailparseModule, "mailparse-module", "connectors/email", "The email connector's module, where the mailparse scenario runs go test -bench BenchmarkCorpus.")
	flag.IntVar(&o.mailparseRuns, "mailparse-runs", 7, "Runs (go test -count) of the mailparse scenario; the medians are reported.")
	flag.StringVar(&o.mailparseBenchtime, "mailparse-benchtime", "50x", "Iterations over the corpus of each mailparse run (go test -benchtime).")
	flag.IntVar(&o.rateLimitN, "ratelimit-n", 1000, "Timed requests of tenant B in each phase of the ratelimit scenario.")
	flag.IntVar(&o.rateLimitBRate, "ratelimit-b-rate", 100, "Requests a second of tenant B in the ratelimit scenario, on schedule; keep it under -ratelimit-token-rate.")
	flag.IntVar(&o.rateLimitFlooders, "ratelimit-flooders", 16, "Concurrent senders of tenant A's flood in the ratelimit scenario, each as fast as it is answered.")
	flag.IntVar(&o.rateLimitTokenRate, "ratelimit-token-rate", 200, "Requests a second (and burst) of every API token while the ratelimit scenario's limits are on (-inbox.api.token.rate and .burst).")
	flag.StringVar(&o.extraArgs, "args", "", "Extra flags for the measured binary, space-separated (for tuning: -kafka.consumer.max-batch=512 -http.pprof).")
	flag.Parse()
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Result is one run's figures.
type Result struct {
	PgbenchInsertTPS  float64 `json:"pgbench_insert_tps"`
	RedisSetOPS       float64 `json:"redis_set_ops"`
	StoredPerSecond   float64 `json:"stored_per_second"`
	AcceptToStoredP50 float64 `json:"accept_to_stored_p50_ms"`
	AcceptToStoredP99 float64 `json:"accept_to_stored_p99_ms"`
	WebhookP50        float64 `json:"webhook_p50_ms"`
	WebhookP99        float64 `json:"webhook_p99_ms"`
	Refused           int     `json:"refused"`
	// StoredOverPgbench compares this run's throughput with the pgbench
	// ceiling measured just before it.
	StoredOverPgbench float64 `json:"stored_over_pgbench"`
}

func run(ctx context.Context, o options, w io.Writer) error {
	bin, err := filepath.Abs(o.binary)
	if err != nil {
		return err
	}
	o.binary = bin
	fmt.Fprintf(w, "Switchboard benchmark: %s, %d CPUs, %s\n", runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	report := map[string]any{}
	if scenario(o.scenarios, "chat") {
		if err := chatScenario(ctx, o, w, report); err != nil {
			return err
		}
	}
	if strings.Contains(o.scenarios, "list") {
		lr, err := listRun(ctx, o, w)
		if err != nil {
			return err
		}
		report["list"] = lr
		fmt.Fprintf(w, "\nlist scenario: %d conversations, %d messages in one tenant (loaded in %.0f s), %d requests each\n", lr.Conversations, lr.Messages, lr.LoadSeconds, o.listQueries)
		fmt.Fprintf(w, "  received tab, first page, channel and queue filters  p50 %6.1f ms  p99 %6.1f ms   target p99 < 50 ms: %s\n", lr.ReceivedP50, lr.ReceivedP99, verdict(lr.ReceivedP99 < 50))
		fmt.Fprintf(w, "  full-text search, rare term (200 messages)           p50 %6.1f ms  p99 %6.1f ms   target p99 < 200 ms: %s\n", lr.SearchRareP50, lr.SearchRareP99, verdict(lr.SearchRareP99 < 200))
		fmt.Fprintf(w, "  full-text search, common term                        p50 %6.1f ms  p99 %6.1f ms   target p99 < 200 ms: %s\n", lr.SearchCommonP50, lr.SearchCommonP99, verdict(lr.SearchCommonP99 < 200))
		fmt.Fprintf(w, "  reply assistant, suggestions of a conversation       p50 %6.1f ms  p99 %6.1f ms   target p99 < 200 ms: %s\n", lr.SuggestionsP50, lr.SuggestionsP99, verdict(lr.SuggestionsP99 < 200))
		fmt.Fprintf(w, "  keyword shortcut expanded for a conversation         p50 %6.1f ms  p99 %6.1f ms   target p99 < 20 ms: %s\n", lr.ShortcutsP50, lr.ShortcutsP99, verdict(lr.ShortcutsP99 < 20))
	}
	if strings.Contains(o.scenarios, "email") {
		if err := emailScenario(ctx, o, w, report); err != nil {
			return err
		}
	}
	if strings.Contains(o.scenarios, "sms") {
		if err := smsScenario(ctx, o, w, report); err != nil {
			return err
		}
	}
	if strings.Contains(o.scenarios, "timers") {
		if err := timersScenario(ctx, o, w, report); err != nil {
			return err
		}
	}
	if strings.Contains(o.scenarios, "routing") {
		if err := routingScenario(ctx, o, w, report); err != nil {
			return err
		}
	}
	if strings.Contains(o.scenarios, "memory") {
		if err := memoryScenario(ctx, o, w, report); err != nil {
			return err
		}
	}
	if scenario(o.scenarios, "chatout") {
		if err := chatOutScenario(ctx, o, w, report); err != nil {
			return err
		}
	}
	if scenario(o.scenarios, "ratelimit") {
		if err := rateLimitScenario(ctx, o, w, report); err != nil {
			return err
		}
	}
	if scenario(o.scenarios, "mailparse") {
		if err := mailparseScenario(ctx, o, w, report); err != nil {
			return err
		}
	}
	if o.out != "" {
		raw, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.out, raw, 0o644)
	}
	return nil
}

// chatScenario runs the chat scenario o.runs times and prints it.
func chatScenario(ctx context.Context, o options, w io.Writer, report map[string]any) error {
	var err error
	fmt.Fprintf(w, "chat scenario: %d signed webhooks per run, concurrency %d, %d messages per conversation, %d runs\n\n", o.n, o.concurrency, o.perConv, o.runs)

	var results []Result
	for r := 1; r <= o.runs; r++ {
		var res Result
		if res.PgbenchInsertTPS, err = pgbenchInsert(ctx, o); err != nil {
			return err
		}
		if res.RedisSetOPS, err = redisSet(ctx, o.concurrency); err != nil {
			return err
		}
		if err := chatRun(ctx, o, &res); err != nil {
			return err
		}
		res.StoredOverPgbench = res.StoredPerSecond / res.PgbenchInsertTPS
		fmt.Fprintf(w, "run %d: pgbench %.0f inserts/s, redis %.0f SET/s | stored %.0f msg/s (%.2f of pgbench), accept->stored p50 %.1f ms p99 %.1f ms, webhook p50 %.1f ms p99 %.1f ms, refused %d\n",
			r, res.PgbenchInsertTPS, res.RedisSetOPS, res.StoredPerSecond, res.StoredOverPgbench, res.AcceptToStoredP50, res.AcceptToStoredP99, res.WebhookP50, res.WebhookP99, res.Refused)
		results = append(results, res)
	}

	med := medianOver(results)
	m := Result{
		PgbenchInsertTPS:  med(func(r Result) float64 { return r.PgbenchInsertTPS }),
		RedisSetOPS:       med(func(r Result) float64 { return r.RedisSetOPS }),
		StoredPerSecond:   med(func(r Result) float64 { return r.StoredPerSecond }),
		AcceptToStoredP50: med(func(r Result) float64 { return r.AcceptToStoredP50 }),
		AcceptToStoredP99: med(func(r Result) float64 { return r.AcceptToStoredP99 }),
		WebhookP50:        med(func(r Result) float64 { return r.WebhookP50 }),
		WebhookP99:        med(func(r Result) float64 { return r.WebhookP99 }),
		StoredOverPgbench: med(func(r Result) float64 { return r.StoredOverPgbench }),
	}
	// The ratio is taken run by run (each chat run right after its pgbench
	// run, on the machine as it is then), then its median.
	ratio := m.StoredOverPgbench
	fmt.Fprintf(w, "\nmedians over %d runs\n", len(results))
	fmt.Fprintf(w, "  ceiling  pgbench single-row INSERT, %d clients   %10.0f rows/s\n", o.concurrency, m.PgbenchInsertTPS)
	fmt.Fprintf(w, "  ceiling  redis-benchmark SET, %d clients          %10.0f ops/s\n", o.concurrency, m.RedisSetOPS)
	fmt.Fprintf(w, "  chat     messages stored per second             %10.0f msg/s   target >= 5000: %s\n", m.StoredPerSecond, verdict(m.StoredPerSecond >= 5000))
	fmt.Fprintf(w, "  chat     stored / pgbench inserts, per run      %10.2f         target >= 0.50: %s\n", ratio, verdict(ratio >= 0.5))
	fmt.Fprintf(w, "  chat     webhook accept -> stored row   p50     %10.1f ms\n", m.AcceptToStoredP50)
	fmt.Fprintf(w, "  chat     webhook accept -> stored row   p99     %10.1f ms\n", m.AcceptToStoredP99)
	fmt.Fprintf(w, "  chat     webhook answer (202)           p50     %10.1f ms\n", m.WebhookP50)
	fmt.Fprintf(w, "  chat     webhook answer (202)           p99     %10.1f ms\n", m.WebhookP99)

	report["chat"] = map[string]any{"runs": results, "median": m}
	return nil
}

// scenario reports whether the comma-separated list names name itself
// ("chat" is not "chatout").
func scenario(list, name string) bool {
	return slices.Contains(strings.Split(list, ","), name)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianOver returns the median over results of the figure f reads.
func medianOver[R any](results []R) func(f func(R) float64) float64 {
	return func(f func(R) float64) float64 {
		vs := make([]float64, len(results))
		for i, r := range results {
			vs[i] = f(r)
		}
		return median(vs)
	}
}

// p50p99 sorts lat and returns its median and 99th percentile, in
// milliseconds.
func p50p99(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	return percentile(lat, 0.50), percentile(lat, 0.99)
}

// percentile of sorted durations, in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// freshDatabase creates an empty database and returns its URL and a drop
// function.
func freshDatabase(ctx context.Context, adminURL, prefix string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to %s: %w", adminURL, err)
	}
	defer conn.Close(ctx)
	name := testkit.RandomName(prefix)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	cfg := conn.Config()
	url := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	drop := func() {
		c, err := pgx.Connect(context.Background(), adminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return url, drop, nil
}
