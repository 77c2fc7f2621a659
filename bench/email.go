package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// EmailResult is one run of the email scenario.
type EmailResult struct {
	// Mails is the size of the backfill.
	Mails int `json:"mails"`
	// BackfillSeconds runs from the mailbox's creation through the admin
	// API to the last backfilled mail's stored row.
	BackfillSeconds float64 `json:"backfill_seconds"`
	// StoredPerSecond is Mails / BackfillSeconds.
	StoredPerSecond float64 `json:"backfill_stored_per_second"`
	// FirstStoredMs is how long the first mail took to be stored after
	// the mailbox's creation: the connector learning of the mailbox,
	// connecting and fetching.
	FirstStoredMs float64 `json:"backfill_first_stored_ms"`
	// IdleMails is how many mails were appended one by one afterwards.
	IdleMails int `json:"idle_mails"`
	// IdleP50 and IdleP99 are the latencies from a mail's APPEND on the
	// IMAP server to its stored row, in milliseconds.
	IdleP50 float64 `json:"idle_delivery_to_stored_p50_ms"`
	IdleP99 float64 `json:"idle_delivery_to_stored_p99_ms"`
}

const (
	// emailThreads is how many conversations the backfill spreads over.
	emailThreads = 1000
	// emailIdlePace is the gap between two mails of the IDLE phase: slow
	// enough that each is a delivery of its own, not a batch.
	emailIdlePace = 20 * time.Millisecond
	// emailWait bounds every wait of the scenario.
	emailWait = 5 * time.Minute
	// emailDomain is the domain of every address and Message-ID.
	emailDomain = "bench.example"
)

// emailScenario runs the email scenario o.runs times and prints it.
func emailScenario(ctx context.Context, o options, w io.Writer, report map[string]any) error {
	if o.emailMails < 1 || o.emailIdleMails < 1 {
		return fmt.Errorf("-email-mails and -email-idle-mails must be at least 1, got %d and %d", o.emailMails, o.emailIdleMails)
	}
	fmt.Fprintf(w, "\nemail scenario: %d mails backfilled over IMAP, then %d appended one by one under IDLE every %s, %d runs\n\n",
		o.emailMails, o.emailIdleMails, emailIdlePace, o.runs)
	var results []EmailResult
	for r := 1; r <= o.runs; r++ {
		res, err := emailRun(ctx, o)
		if err != nil {
			return fmt.Errorf("email scenario, run %d: %w", r, err)
		}
		fmt.Fprintf(w, "run %d: backfill %d mails in %.1f s (first stored after %.0f ms), %.0f mails/s | IDLE delivery -> stored p50 %.1f ms p99 %.1f ms (%d mails)\n",
			r, res.Mails, res.BackfillSeconds, res.FirstStoredMs, res.StoredPerSecond, res.IdleP50, res.IdleP99, res.IdleMails)
		results = append(results, res)
	}
	med := medianOver(results)
	m := EmailResult{
		Mails:           o.emailMails,
		BackfillSeconds: med(func(r EmailResult) float64 { return r.BackfillSeconds }),
		StoredPerSecond: med(func(r EmailResult) float64 { return r.StoredPerSecond }),
		FirstStoredMs:   med(func(r EmailResult) float64 { return r.FirstStoredMs }),
		IdleMails:       o.emailIdleMails,
		IdleP50:         med(func(r EmailResult) float64 { return r.IdleP50 }),
		IdleP99:         med(func(r EmailResult) float64 { return r.IdleP99 }),
	}
	fmt.Fprintf(w, "\nmedians over %d runs\n", len(results))
	fmt.Fprintf(w, "  email    IMAP backfill, mails stored per second %10.0f mails/s (%d mails)\n", m.StoredPerSecond, m.Mails)
	fmt.Fprintf(w, "  email    IDLE delivery -> stored row   p50      %10.1f ms\n", m.IdleP50)
	fmt.Fprintf(w, "  email    IDLE delivery -> stored row   p99      %10.1f ms\n", m.IdleP99)
	report["email"] = map[string]any{"runs": results, "median": m}
	return nil
}

// emailRun runs the email scenario once: a fresh database, an IMAP server
// in this process on 127.0.0.1, and the binary reading it.
func emailRun(ctx context.Context, o options) (EmailResult, error) {
	res := EmailResult{Mails: o.emailMails, IdleMails: o.emailIdleMails}
	env, err := newRunEnv(ctx, o, "sbbench_email_")
	if err != nil {
		return res, err
	}
	defer env.close()

	srv, err := startIMAP()
	if err != nil {
		return res, err
	}
	defer srv.close()
	// The backfill waits in the folder before the connector knows of it,
	// as in a mailbox moved onto Switchboard.
	for i := range o.emailMails {
		if err := srv.append(backfillMail(i)); err != nil {
			return res, err
		}
	}

	node, err := env.start(ctx, o, o.addr, "-blob.dir", filepath.Join(env.dataDir, "blobs"))
	if err != nil {
		return res, err
	}
	defer node.Stop()

	conn, err := pgx.Connect(ctx, env.dbURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(ctx)

	created := time.Now()
	mailbox, err := createMailbox(ctx, node.Base(), env.boot.APIToken.Token, srv)
	if err != nil {
		return res, err
	}
	if err := waitStored(ctx, conn, mailbox, o.emailMails, node); err != nil {
		return res, fmt.Errorf("backfill: %w", err)
	}
	// The last stored row ends the backfill: polling every 100 ms would
	// add up to 100 ms to it.
	var first, last time.Time
	if err := conn.QueryRow(ctx, `SELECT min(stored_at), max(stored_at) FROM inbox.messages WHERE channel_account_id = $1`, mailbox).Scan(&first, &last); err != nil {
		return res, fmt.Errorf("read the backfill's stored rows: %w", err)
	}
	res.FirstStoredMs = float64(first.Sub(created)) / float64(time.Millisecond)
	span := last.Sub(created)
	res.BackfillSeconds = span.Seconds()
	res.StoredPerSecond = float64(o.emailMails) / span.Seconds()

	// Caught up, the connector waits in IDLE: each mail now is a delivery
	// of its own. The append time is taken just before the mail exists on
	// the server; both clocks are this machine's.
	appended := make(map[string]time.Time, o.emailIdleMails)
	tick := time.NewTicker(emailIdlePace)
	defer tick.Stop()
	for i := range o.emailIdleMails {
		id := fmt.Sprintf("bench-idle-%06d@%s", i, emailDomain)
		body := idleMail(i, id)
		appended[id] = time.Now()
		if err := srv.append(body); err != nil {
			return res, err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	if err := waitStored(ctx, conn, mailbox, o.emailMails+o.emailIdleMails, node); err != nil {
		return res, fmt.Errorf("IDLE phase: %w", err)
	}
	rows, err := conn.Query(ctx, `SELECT metadata ->> 'message_id', stored_at FROM inbox.messages
		WHERE channel_account_id = $1 AND metadata ->> 'message_id' LIKE 'bench-idle-%'`, mailbox)
	if err != nil {
		return res, fmt.Errorf("read the IDLE phase's rows: %w", err)
	}
	var lat []time.Duration
	for rows.Next() {
		var (
			id     string
			stored time.Time
		)
		if err := rows.Scan(&id, &stored); err != nil {
			return res, err
		}
		at, ok := appended[id]
		if !ok {
			return res, fmt.Errorf("stored message_id %q was never appended (brackets kept?)", id)
		}
		lat = append(lat, stored.Sub(at))
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	if len(lat) != o.emailIdleMails {
		return res, fmt.Errorf("%d of %d IDLE mails found by their message_id metadata", len(lat), o.emailIdleMails)
	}
	res.IdleP50, res.IdleP99 = p50p99(lat)
	return res, nil
}

// waitStored polls until the mailbox has want stored messages, for at most
// emailWait.
func waitStored(ctx context.Context, conn *pgx.Conn, mailbox string, want int, node *testkit.Node) error {
	var stored int
	err := poll(ctx, emailWait, 100*time.Millisecond, func() (bool, error) {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM inbox.messages WHERE channel_account_id = $1`, mailbox).Scan(&stored); err != nil {
			return false, fmt.Errorf("count stored mails: %w", err)
		}
		if stored > want {
			return false, fmt.Errorf("%d mails stored for %d appended", stored, want)
		}
		return stored == want, nil
	})
	if errors.Is(err, errGaveUp) {
		return fmt.Errorf("only %d of %d mails stored after %s; the binary's log:\n%s", stored, want, emailWait, node.Logs())
	}
	return err
}

// createMailbox creates the mailbox through the admin API and returns its
// id, the channel_account_id of its messages.
func createMailbox(ctx context.Context, base, token string, srv *imapServer) (string, error) {
	// No reply is sent: the SMTP server is a port nobody listens on.
	smtpAddr, err := testkit.FreeAddr()
	if err != nil {
		return "", err
	}
	_, smtpPort, err := net.SplitHostPort(smtpAddr)
	if err != nil {
		return "", err
	}
	port, err := strconv.Atoi(smtpPort)
	if err != nil {
		return "", err
	}
	return adminCreate(ctx, base, token, "/v1/admin/mailboxes", "mailbox", map[string]any{
		"name":    "Bench support",
		"address": "support@" + emailDomain,
		"imap":    map[string]any{"host": "127.0.0.1", "port": srv.port, "tls": "none", "username": srv.username, "password": srv.password},
		"smtp":    map[string]any{"host": "127.0.0.1", "port": port, "tls": "none"},
	})
}

// imapServer is go-imap's in-memory server on 127.0.0.1, in this process.
type imapServer struct {
	srv      *imapserver.Server
	user     *imapmemserver.User
	port     int
	username string
	password string
}

func startIMAP() (*imapServer, error) {
	s := &imapServer{username: "support@" + emailDomain, password: testkit.RandomName("pw")}
	s.user = imapmemserver.NewUser(s.username, s.password)
	if err := s.user.Create("INBOX", nil); err != nil {
		return nil, fmt.Errorf("create INBOX: %w", err)
	}
	mem := imapmemserver.New()
	mem.AddUser(s.user)
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps: imap.CapSet{imap.CapIMAP4rev1: {}},
		// Plain LOGIN without TLS: the server listens on the loopback only.
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for IMAP: %w", err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
			log.Printf("bench IMAP server: %v", err)
		}
	}()
	return s, nil
}

func (s *imapServer) append(mail []byte) error {
	if _, err := s.user.Append("INBOX", bytes.NewReader(mail), &imap.AppendOptions{}); err != nil {
		return fmt.Errorf("append to INBOX: %w", err)
	}
	return nil
}

func (s *imapServer) close() { _ = s.srv.Close() }

// backfillMail is the i-th mail of the backfill: thread i % emailThreads,
// each mail replying to the thread's previous one, one in ten with an HTML
// part, a few hundred bytes each.
func backfillMail(i int) []byte {
	thread := i % emailThreads
	id := fmt.Sprintf("bench-%06d@%s", i, emailDomain)
	var h strings.Builder
	fmt.Fprintf(&h, "From: Customer %d <customer-%d@%s>\r\n", thread, thread, emailDomain)
	fmt.Fprintf(&h, "To: Support <support@%s>\r\n", emailDomain)
	subject := fmt.Sprintf("Commande %d non reçue", 100000+thread)
	if i >= emailThreads {
		prev := fmt.Sprintf("<bench-%06d@%s>", i-emailThreads, emailDomain)
		root := fmt.Sprintf("<bench-%06d@%s>", thread, emailDomain)
		subject = "Re: " + subject
		fmt.Fprintf(&h, "In-Reply-To: %s\r\n", prev)
		if root == prev {
			fmt.Fprintf(&h, "References: %s\r\n", root)
		} else {
			fmt.Fprintf(&h, "References: %s %s\r\n", root, prev)
		}
	}
	fmt.Fprintf(&h, "Subject: %s\r\n", mime.QEncoding.Encode("utf-8", subject))
	fmt.Fprintf(&h, "Date: %s\r\n", time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z))
	fmt.Fprintf(&h, "Message-ID: <%s>\r\nMIME-Version: 1.0\r\n", id)
	text := fmt.Sprintf("Bonjour,\r\n\r\nJe n'ai toujours pas reçu ma commande %d, passée il y a deux semaines.\r\nPouvez-vous vérifier où en est la livraison ?\r\n\r\nMessage %d.\r\nMerci, Customer %d\r\n", 100000+thread, i, thread)
	if i%10 != 0 {
		fmt.Fprintf(&h, "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s", text)
		return []byte(h.String())
	}
	boundary := fmt.Sprintf("bench-boundary-%d", i)
	fmt.Fprintf(&h, "Content-Type: multipart/alternative; boundary=%q\r\n\r\n", boundary)
	fmt.Fprintf(&h, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n", boundary, text)
	fmt.Fprintf(&h, "--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n", boundary)
	fmt.Fprintf(&h, "<html><body><p>Bonjour,</p><p>Je n'ai toujours pas reçu ma <b>commande %d</b>.</p><p>Merci, Customer %d</p></body></html>\r\n", 100000+thread, thread)
	fmt.Fprintf(&h, "--%s--\r\n", boundary)
	return []byte(h.String())
}

// idleMail is the i-th mail of the IDLE phase, a new thread each.
func idleMail(i int, messageID string) []byte {
	return fmt.Appendf(nil, "From: New customer %d <new-%d@%s>\r\nTo: support@%s\r\nSubject: Question %d\r\nDate: %s\r\nMessage-ID: <%s>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour, une question sur ma facture %d, merci.\r\n",
		i, i, emailDomain, emailDomain, i, time.Now().Format(time.RFC1123Z), messageID, i)
}
