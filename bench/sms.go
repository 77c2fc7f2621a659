package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// SMSResult is one run of the sms scenario.
type SMSResult struct {
	// Requests is the size of the throughput phase.
	Requests int `json:"throughput_requests"`
	// Concurrency is its number of concurrent senders.
	Concurrency int `json:"throughput_concurrency"`
	// AnsweredPerSecond is Requests over the time from the first request
	// to the last 200 answer.
	AnsweredPerSecond float64 `json:"throughput_answered_per_second"`
	// AnswerP50 and AnswerP99 are the times from a webhook's first
	// attempt to its 200 answer, in milliseconds.
	AnswerP50 float64 `json:"throughput_answer_p50_ms"`
	AnswerP99 float64 `json:"throughput_answer_p99_ms"`
	// Refused counts the answers other than 200 (and requests that
	// failed), each followed by an attempt again, as Twilio retries.
	Refused int `json:"throughput_refused"`

	// PacedRate is the paced phase's target rate, requests per second.
	PacedRate int `json:"paced_rate"`
	// PacedRequests is how many it sent: PacedRate for its duration.
	PacedRequests int `json:"paced_requests"`
	// PacedAchieved is PacedRequests over the time from the first
	// scheduled request to the last 200 answer.
	PacedAchieved float64 `json:"paced_achieved_per_second"`
	// PacedP50 and PacedP99 are the times from a webhook's scheduled
	// send to its 200 answer, in milliseconds: a request that waits for
	// the sender counts its wait (no coordinated omission).
	PacedP50 float64 `json:"paced_answer_p50_ms"`
	PacedP99 float64 `json:"paced_answer_p99_ms"`
	PacedMax float64 `json:"paced_answer_max_ms"`
	// PacedRefused counts the paced phase's answers other than 200.
	PacedRefused int `json:"paced_refused"`

	// Failed counts the webhooks never answered 200 within smsAttempts.
	Failed int `json:"failed"`
	// Answered is how many distinct MessageSids were answered 200, the
	// warm-up's included; Stored how many of them inbox.messages holds,
	// and Lost how many it lacks once the count stopped growing.
	Answered int `json:"answered"`
	Stored   int `json:"stored"`
	Lost     int `json:"lost"`
	// Duplicates counts rows beyond one per MessageSid.
	Duplicates int `json:"duplicates"`
}

const (
	// smsCustomers is how many customer numbers write, hence about how
	// many conversations the scenario makes.
	smsCustomers = 1000
	// smsNumber is the account's number, the To of every webhook.
	smsNumber = "+33700000001"
	// smsPacedWorkers bounds the paced phase's requests in flight: far
	// above the rate times the target latency (2000/s x 50 ms = 100), so
	// that the pacing, not the senders, sets the rate.
	smsPacedWorkers = 512
	// smsTwilioTimeout is how long Twilio waits for a webhook's answer
	// before it gives up on the request.
	smsTwilioTimeout = 15 * time.Second
	// smsAttempts bounds the attempts of one webhook; smsRetryPause is
	// the pause between two.
	smsAttempts   = 20
	smsRetryPause = 10 * time.Millisecond
	// smsStoredWait bounds the wait for the stored rows once the count
	// stops growing.
	smsStoredWait = 30 * time.Second
	// smsTargetP99 is the target at 2,000 requests/s.
	smsTargetP99 = 50.0
)

// Phases of the scenario, the third and fourth bytes of their
// MessageSids: rows of one phase are told apart by a LIKE on the prefix.
const (
	smsPhaseWarmup     = 0
	smsPhaseThroughput = 1
	smsPhasePaced      = 2
)

// smsScenario runs the sms scenario o.runs times and prints it.
func smsScenario(ctx context.Context, o options, w io.Writer, report map[string]any) error {
	if o.smsN < 1 || o.smsRate < 1 || o.smsDuration < time.Second || o.concurrency < 1 {
		return fmt.Errorf("-sms-n, -sms-rate and -c must be at least 1 and -sms-duration at least 1s, got %d, %d, %d and %s", o.smsN, o.smsRate, o.concurrency, o.smsDuration)
	}
	paced := int(float64(o.smsRate) * o.smsDuration.Seconds())
	fmt.Fprintf(w, "\nsms scenario: %d signed Twilio webhooks at concurrency %d as fast as possible, then %d/s for %s (%d webhooks) paced, %d customers, %d runs\n\n",
		o.smsN, o.concurrency, o.smsRate, o.smsDuration, paced, smsCustomers, o.runs)
	var results []SMSResult
	for r := 1; r <= o.runs; r++ {
		res, err := smsRun(ctx, o)
		if err != nil {
			return fmt.Errorf("sms scenario, run %d: %w", r, err)
		}
		fmt.Fprintf(w, "run %d: %.0f webhooks/s answered 200 at c=%d, answer p50 %.1f ms p99 %.1f ms, refused %d | paced %d/s (%.0f/s achieved): answer p50 %.1f ms p99 %.1f ms max %.1f ms, refused %d | stored %d of %d answered, lost %d, duplicates %d, never answered %d\n",
			r, res.AnsweredPerSecond, res.Concurrency, res.AnswerP50, res.AnswerP99, res.Refused,
			res.PacedRate, res.PacedAchieved, res.PacedP50, res.PacedP99, res.PacedMax, res.PacedRefused,
			res.Stored, res.Answered, res.Lost, res.Duplicates, res.Failed)
		results = append(results, res)
	}
	med := medianOver(results)
	sum := func(f func(SMSResult) int) int {
		n := 0
		for _, r := range results {
			n += f(r)
		}
		return n
	}
	m := SMSResult{
		Requests:          o.smsN,
		Concurrency:       o.concurrency,
		AnsweredPerSecond: med(func(r SMSResult) float64 { return r.AnsweredPerSecond }),
		AnswerP50:         med(func(r SMSResult) float64 { return r.AnswerP50 }),
		AnswerP99:         med(func(r SMSResult) float64 { return r.AnswerP99 }),
		PacedRate:         o.smsRate,
		PacedRequests:     paced,
		PacedAchieved:     med(func(r SMSResult) float64 { return r.PacedAchieved }),
		PacedP50:          med(func(r SMSResult) float64 { return r.PacedP50 }),
		PacedP99:          med(func(r SMSResult) float64 { return r.PacedP99 }),
		PacedMax:          med(func(r SMSResult) float64 { return r.PacedMax }),
		// Counts are summed over the runs, not their median: one lost
		// message in one run is one too many.
		Refused:      sum(func(r SMSResult) int { return r.Refused }),
		PacedRefused: sum(func(r SMSResult) int { return r.PacedRefused }),
		Failed:       sum(func(r SMSResult) int { return r.Failed }),
		Answered:     sum(func(r SMSResult) int { return r.Answered }),
		Stored:       sum(func(r SMSResult) int { return r.Stored }),
		Lost:         sum(func(r SMSResult) int { return r.Lost }),
		Duplicates:   sum(func(r SMSResult) int { return r.Duplicates }),
	}
	fmt.Fprintf(w, "\nmedians over %d runs (counts summed)\n", len(results))
	fmt.Fprintf(w, "  sms      webhooks answered 200 per second, c=%-3d %10.0f req/s\n", o.concurrency, m.AnsweredPerSecond)
	fmt.Fprintf(w, "  sms      webhook answer (200), c=%-3d       p50  %10.1f ms\n", o.concurrency, m.AnswerP50)
	fmt.Fprintf(w, "  sms      webhook answer (200), c=%-3d       p99  %10.1f ms\n", o.concurrency, m.AnswerP99)
	fmt.Fprintf(w, "  sms      webhook answer (200) at %5d/s    p50  %10.1f ms\n", o.smsRate, m.PacedP50)
	fmt.Fprintf(w, "  sms      webhook answer (200) at %5d/s    p99  %10.1f ms   target p99 < %.0f ms: %s\n", o.smsRate, m.PacedP99, smsTargetP99, verdict(m.PacedP99 < smsTargetP99))
	fmt.Fprintf(w, "  sms      paced rate achieved                   %10.0f req/s (of %d)\n", m.PacedAchieved, o.smsRate)
	fmt.Fprintf(w, "  sms      answered 200 and stored in inbox.messages %6d of %d   none lost: %s\n", m.Stored, m.Answered, verdict(m.Lost == 0 && m.Duplicates == 0 && m.Failed == 0))
	report["sms"] = map[string]any{"runs": results, "median": m}
	return nil
}

// smsRun runs the sms scenario once: a fresh database, the binary, an SMS
// account created through the admin API, then both phases.
func smsRun(ctx context.Context, o options) (SMSResult, error) {
	res := SMSResult{Requests: o.smsN, Concurrency: o.concurrency, PacedRate: o.smsRate}
	env, err := newRunEnv(ctx, o, "sbbench_sms_")
	if err != nil {
		return res, err
	}
	defer env.close()

	// The address is known before the start: the webhooks are signed for
	// the public base URL, which is given explicitly.
	addr := o.addr
	if addr == "" {
		if addr, err = testkit.FreeAddr(); err != nil {
			return res, err
		}
	}
	base := "http://" + addr
	// No reply is sent: Twilio's API is a port nobody listens on.
	twilioAddr, err := testkit.FreeAddr()
	if err != nil {
		return res, err
	}
	node, err := env.start(ctx, o, addr, "-sms.public-base-url="+base, "-sms.twilio.base-url=http://"+twilioAddr)
	if err != nil {
		return res, err
	}
	defer node.Stop()

	acct := smsAccount{sid: "AC" + randomHex(16), token: randomHex(16)}
	if acct.id, err = createSMSAccount(ctx, base, env.boot.APIToken.Token, acct); err != nil {
		return res, err
	}
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConns: smsPacedWorkers, MaxIdleConnsPerHost: smsPacedWorkers},
		Timeout:   smsTwilioTimeout,
	}
	return smsMeasure(ctx, o, &smsSender{client: client, base: base, acct: acct}, node, env.dbURL)
}

// smsMeasure runs both phases on a running node whose SMS account s posts
// to, and checks the stored rows.
func smsMeasure(ctx context.Context, o options, s *smsSender, node *testkit.Node, dbURL string) (SMSResult, error) {
	res := SMSResult{Requests: o.smsN, Concurrency: o.concurrency, PacedRate: o.smsRate}
	// The account is live once the connector has read its configuration;
	// until then its webhooks are refused with 403.
	warm := s.webhook(smsPhaseWarmup, 0)
	var (
		status  int
		postErr error
	)
	err := poll(ctx, 30*time.Second, 50*time.Millisecond, func() (bool, error) {
		status, postErr = s.post(ctx, warm)
		return postErr == nil && status == http.StatusOK, nil
	})
	if errors.Is(err, errGaveUp) {
		return res, fmt.Errorf("the SMS account never went live (last answer %d, %v); the binary's log:\n%s", status, postErr, node.Logs())
	}
	if err != nil {
		return res, err
	}
	answered := []string{warm.sid}

	// Throughput: closed loop, o.concurrency senders as fast as answered.
	hooks := make([]smsWebhook, o.smsN)
	for i := range hooks {
		hooks[i] = s.webhook(smsPhaseThroughput, i)
	}
	var (
		next    atomic.Int64
		refused atomic.Int64
		failed  atomic.Int64
		mu      sync.Mutex
		lat     = make([]time.Duration, 0, o.smsN)
		ok      = make([]bool, o.smsN)
		wg      sync.WaitGroup
	)
	start := time.Now()
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, o.smsN/o.concurrency+1)
			for {
				i := int(next.Add(1)) - 1
				if i >= o.smsN || ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				if s.deliver(ctx, hooks[i], &refused) {
					local = append(local, time.Since(t0))
					ok[i] = true
				} else {
					failed.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.AnsweredPerSecond = float64(len(lat)) / elapsed.Seconds()
	res.AnswerP50, res.AnswerP99 = p50p99(lat)
	res.Refused = int(refused.Load())
	for i, h := range hooks {
		if ok[i] {
			answered = append(answered, h.sid)
		}
	}

	// Paced: open loop. Request i is due at start + i/rate whatever the
	// answers so far, and its time runs from then.
	n := int(float64(o.smsRate) * o.smsDuration.Seconds())
	res.PacedRequests = n
	paced := make([]smsWebhook, n)
	for i := range paced {
		paced[i] = s.webhook(smsPhasePaced, i)
	}
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, n)
	var pacedRefused atomic.Int64
	pacedLat := make([]time.Duration, 0, n)
	pacedOK := make([]bool, n)
	var lastAnswer time.Time
	for range smsPacedWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			var last time.Time
			for j := range jobs {
				if s.deliver(ctx, paced[j.i], &pacedRefused) {
					last = time.Now()
					local = append(local, last.Sub(j.due))
					pacedOK[j.i] = true
				} else {
					failed.Add(1)
				}
			}
			mu.Lock()
			pacedLat = append(pacedLat, local...)
			if last.After(lastAnswer) {
				lastAnswer = last
			}
			mu.Unlock()
		}()
	}
	interval := time.Second / time.Duration(o.smsRate)
	start = time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		// Sleeps are coarser than 500 µs: a late dispatcher sends the
		// requests already due at once, keeping the average rate.
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- job{i, due}
	}
	close(jobs)
	wg.Wait()
	res.PacedP50, res.PacedP99 = p50p99(pacedLat)
	res.PacedMax = percentile(pacedLat, 1) // sorted by p50p99
	res.PacedRefused = int(pacedRefused.Load())
	if !lastAnswer.IsZero() {
		res.PacedAchieved = float64(len(pacedLat)) / lastAnswer.Sub(start).Seconds()
	}
	for i, h := range paced {
		if pacedOK[i] {
			answered = append(answered, h.sid)
		}
	}
	res.Failed = int(failed.Load())
	res.Answered = len(answered)

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(ctx)
	if err := smsCheckStored(ctx, conn, s.acct.id, answered, &res); err != nil {
		return res, err
	}
	return res, ctx.Err()
}

// smsCheckStored waits until the account's stored rows stop growing, for
// at most smsStoredWait without progress, then counts the answered
// MessageSids stored, the lost and the doubled.
func smsCheckStored(ctx context.Context, conn *pgx.Conn, account string, answered []string, res *SMSResult) error {
	count := func() (int, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM inbox.messages WHERE channel_account_id = $1`, account).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count stored messages: %w", err)
		}
		return n, nil
	}
	last, progress := -1, time.Now()
	for {
		n, err := count()
		if err != nil {
			return err
		}
		if n >= len(answered) {
			break
		}
		if n != last {
			last, progress = n, time.Now()
		} else if time.Since(progress) > smsStoredWait {
			break
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	rows, err := conn.Query(ctx, `SELECT external_id, count(*) FROM inbox.messages WHERE channel_account_id = $1 GROUP BY external_id`, account)
	if err != nil {
		return fmt.Errorf("read stored MessageSids: %w", err)
	}
	stored := map[string]int{}
	for rows.Next() {
		var (
			sid string
			n   int
		)
		if err := rows.Scan(&sid, &n); err != nil {
			return err
		}
		stored[sid] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read stored MessageSids: %w", err)
	}
	for _, sid := range answered {
		n := stored[sid]
		if n == 0 {
			res.Lost++
			continue
		}
		res.Stored++
		res.Duplicates += n - 1
	}
	return nil
}

// smsAccount is the SMS account the webhooks are for.
type smsAccount struct {
	id    string // Switchboard's id, in the webhook path
	sid   string // Twilio's AccountSid
	token string // the auth token that signs the webhooks
}

// createSMSAccount creates the account through the admin API and returns
// its id.
func createSMSAccount(ctx context.Context, base, adminToken string, a smsAccount) (string, error) {
	return adminCreate(ctx, base, adminToken, "/v1/admin/sms-accounts", "SMS account",
		map[string]any{"name": "Bench SMS", "account_sid": a.sid, "auth_token": a.token, "numbers": []string{smsNumber}})
}

// smsWebhook is one signed messaging webhook, ready to post.
type smsWebhook struct {
	sid       string
	url       string
	body      string
	signature string
}

// smsSender builds and posts the webhooks of one account.
type smsSender struct {
	client *http.Client
	base   string
	acct   smsAccount
}

// webhook is the i-th messaging webhook of phase: a distinct MessageSid,
// one of smsCustomers numbers, the fields Twilio sends for an SMS.
func (s *smsSender) webhook(phase, i int) smsWebhook {
	sid := fmt.Sprintf("SM%08x%024x", phase, i)
	customer := i % smsCustomers
	form := url.Values{
		"ToCountry": {"FR"}, "ToState": {""}, "SmsMessageSid": {sid}, "NumMedia": {"0"}, "ToCity": {""},
		"FromZip": {""}, "SmsSid": {sid}, "FromState": {""}, "SmsStatus": {"received"}, "FromCity": {""},
		"Body":        {fmt.Sprintf("Bonjour, je n'ai pas reçu ma commande %d, pouvez-vous vérifier ? (%d)", 100000+customer, i)},
		"FromCountry": {"FR"}, "To": {smsNumber}, "ToZip": {""}, "NumSegments": {"1"}, "MessageSid": {sid},
		"AccountSid": {s.acct.sid}, "From": {fmt.Sprintf("+336%08d", customer)}, "ApiVersion": {"2010-04-01"},
	}
	u := s.base + "/v1/webhooks/sms/" + url.PathEscape(s.acct.id) + "/messages"
	return smsWebhook{sid: sid, url: u, body: form.Encode(), signature: twilioSignature(s.acct.token, u, form)}
}

// twilioSignature is X-Twilio-Signature: base64 of the HMAC-SHA1, keyed
// with the auth token, of the URL followed by each POST parameter's name
// and value, sorted by name.
func twilioSignature(token, u string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	mac := hmac.New(sha1.New, []byte(token))
	io.WriteString(mac, u)
	for _, k := range keys {
		for _, v := range form[k] {
			io.WriteString(mac, k+v)
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// post sends one webhook and returns the answer's status.
func (s *smsSender) post(ctx context.Context, h smsWebhook) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, strings.NewReader(h.body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", h.signature)
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	// Read to the end, or the connection is not reused.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// deliver posts h until it is answered 200, as Twilio retries a webhook
// answered otherwise, at most smsAttempts times; every other answer is
// counted in refused.
func (s *smsSender) deliver(ctx context.Context, h smsWebhook, refused *atomic.Int64) bool {
	for range smsAttempts {
		status, err := s.post(ctx, h)
		if err == nil && status == http.StatusOK {
			return true
		}
		refused.Add(1)
		if ctx.Err() != nil {
			return false
		}
		time.Sleep(smsRetryPause)
	}
	return false
}

// randomHex is n random bytes in lowercase hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
