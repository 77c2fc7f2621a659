// Package threads decides which conversation an inbound mail belongs to,
// and remembers what replies need to thread on the customer's side.
//
// A mail joins a thread, in this order: by its In-Reply-To, then its
// References (newest first), against the Message-IDs of the mails the
// connector ingested or sent; then by a reply address reply+<token>@...;
// then by a token [#<token>] in its subject; then by the root of its
// Outlook Thread-Index, when its Thread-Topic is its subject and the topic
// of the thread's mails that carried that root. Otherwise it starts a
// thread whose key is its own Message-ID. The thread key is what the inbox
// keys a conversation on, so a thread is a conversation.
//
// The Thread-Index comes last because anyone can copy one: its root is a
// time and a random GUID that every participant of an Outlook conversation
// sees, while the references and tokens point at mails only the customer
// received. Its guards keep a stale or copied root from pulling a new
// topic into an old conversation: the lookup is per mailbox (so per
// tenant), and the reply's Thread-Topic must agree with its own subject
// and with the thread's, prefixes aside (package subject).
package threads

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/mail"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-oss/switchboard/connectors/email/internal/subject"
	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/pg"
)

// Schema is the connector's PostgreSQL schema.
const Schema = "email"

//go:embed migrations/*.sql
var migrations embed.FS

// Store keeps Message-IDs and thread tokens in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Migrate brings the tables up to date.
func (s *Store) Migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("threads migrations: %w", err)
	}
	return pg.Migrate(ctx, s.pool, Schema, "threads_schema_version", sub)
}

// Inbound is what threading needs of a received mail.
type Inbound struct {
	MailboxID  string
	MessageID  string
	InReplyTo  string
	References []string
	// Recipients are the To and Cc addresses, for reply+<token>@ ones.
	Recipients []string
	Subject    string
	// ThreadIndex and ThreadTopic are Outlook's Thread-Index (base64) and
	// Thread-Topic headers, empty when absent.
	ThreadIndex string
	ThreadTopic string
	// Fallback names the mail when it has no Message-ID (a content hash).
	Fallback string
}

// Resolve returns the thread key of a mail: an existing thread's, or a new
// one's.
func (s *Store) Resolve(ctx context.Context, in Inbound) (string, error) {
	ids := make([]string, 0, 1+len(in.References))
	if in.InReplyTo != "" {
		ids = append(ids, in.InReplyTo)
	}
	for i := len(in.References) - 1; i >= 0; i-- {
		if r := in.References[i]; r != "" && r != in.MessageID {
			ids = append(ids, r)
		}
	}
	if len(ids) > 0 {
		// array_position keeps the order of preference: In-Reply-To, then
		// the newest reference.
		var key string
		err := s.pool.QueryRow(ctx, `SELECT thread_key FROM email.messages
			WHERE mailbox_id = $1 AND message_id = ANY($2)
			ORDER BY array_position($2, message_id) LIMIT 1`, in.MailboxID, ids).Scan(&key)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("find thread by references: %w", err)
		}
	}
	var tokens []string
	for _, r := range in.Recipients {
		if t, ok := ParseReplyAddress(r); ok {
			tokens = append(tokens, t)
		}
	}
	if t, ok := SubjectToken(in.Subject); ok {
		tokens = append(tokens, t)
	}
	if len(tokens) > 0 {
		var key string
		err := s.pool.QueryRow(ctx, `SELECT thread_key FROM email.threads
			WHERE mailbox_id = $1 AND token = ANY($2)
			ORDER BY array_position($2, token) LIMIT 1`, in.MailboxID, tokens).Scan(&key)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("find thread by token: %w", err)
		}
	}
	if root, topic, ok := outlookConversation(in.ThreadIndex, in.ThreadTopic, in.Subject); ok {
		var key string
		err := s.pool.QueryRow(ctx, `SELECT thread_key FROM email.thread_roots
			WHERE mailbox_id = $1 AND root = $2 AND topic_hash = $3`, in.MailboxID, root, topic).Scan(&key)
		if err == nil {
			return key, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("find thread by Thread-Index: %w", err)
		}
	}
	root := in.MessageID
	if root == "" {
		root = in.Fallback
	}
	return Key(root), nil
}

// outlookRootBytes is the length of a Thread-Index's root: a reserved
// byte, five bytes of a FILETIME and a 16-byte GUID (MS-OXOMSG's
// PidTagConversationIndex); each reply appends a 5-byte block.
const outlookRootBytes = 22

// OutlookRoot returns the root of a Thread-Index header value, in hex; ok
// is false when the value is not base64 of at least a root, or its GUID is
// zero (the mark of a client that fills the header without meaning it).
func OutlookRoot(threadIndex string) (root string, ok bool) {
	threadIndex = strings.TrimRight(strings.Join(strings.Fields(threadIndex), ""), "=")
	b, err := base64.RawStdEncoding.DecodeString(threadIndex)
	if err != nil || len(b) < outlookRootBytes {
		return "", false
	}
	guid := b[outlookRootBytes-16 : outlookRootBytes]
	if strings.Trim(string(guid), "\x00") == "" {
		return "", false
	}
	return hex.EncodeToString(b[:outlookRootBytes]), true
}

// outlookConversation returns the root of a mail's Thread-Index and the
// hash of its topic, when the mail has both and its Thread-Topic is its
// subject, prefixes aside. A Thread-Topic that disagrees with the subject
// comes from a client that kept an old conversation's headers on a new
// mail, or from someone who copied them: no join on it.
func outlookConversation(threadIndex, threadTopic, subj string) (root, topicHash string, ok bool) {
	root, ok = OutlookRoot(threadIndex)
	if !ok || !subject.Same(threadTopic, subj) {
		return "", "", false
	}
	sum := sha256.Sum256([]byte(subject.Key(threadTopic)))
	return root, hex.EncodeToString(sum[:]), true
}

// Key turns a root Message-ID into a thread key within the bound of
// events.MaxIDBytes.
func Key(root string) string {
	if len(root) <= events.MaxIDBytes-4 {
		return root
	}
	sum := sha256.Sum256([]byte(root))
	return "sha:" + hex.EncodeToString(sum[:])
}

// Message is a mail to remember: one ingested or one sent.
type Message struct {
	MailboxID  string
	MessageID  string
	ThreadKey  string
	ExternalID string
	// Outbound is true for the connector's own replies.
	Outbound   bool
	Subject    string
	References []string
	// ThreadIndex and ThreadTopic are Outlook's headers of an ingested
	// mail, empty when absent.
	ThreadIndex string
	ThreadTopic string
}

// Record remembers a mail's Message-ID and thread, and the root of its
// Thread-Index with its topic. Recording one twice keeps the first: a
// Message-ID, or an Outlook conversation, belongs to the thread it first
// joined.
func (s *Store) Record(ctx context.Context, m Message) error {
	if root, topic, ok := outlookConversation(m.ThreadIndex, m.ThreadTopic, m.Subject); ok {
		_, err := s.pool.Exec(ctx, `INSERT INTO email.thread_roots (mailbox_id, root, topic_hash, thread_key)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, m.MailboxID, root, topic, m.ThreadKey)
		if err != nil {
			return fmt.Errorf("record Thread-Index root of %s: %w", m.MessageID, err)
		}
	}
	if m.MessageID == "" {
		return nil
	}
	dir := "in"
	if m.Outbound {
		dir = "out"
	}
	refs := m.References
	if refs == nil {
		refs = []string{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO email.messages (mailbox_id, message_id, thread_key, external_id, direction, subject, refs)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (mailbox_id, message_id) DO NOTHING`,
		m.MailboxID, m.MessageID, m.ThreadKey, m.ExternalID, dir, m.Subject, refs)
	if err != nil {
		return fmt.Errorf("record message %s: %w", m.MessageID, err)
	}
	return nil
}

// Parent is what a reply needs of the mail it answers.
type Parent struct {
	MessageID  string
	References []string
	Subject    string
}

// Parent finds the ingested mail the inbox knows as externalID; ok is
// false when the connector never saw it.
func (s *Store) Parent(ctx context.Context, mailboxID, externalID string) (Parent, bool, error) {
	var p Parent
	err := s.pool.QueryRow(ctx, `SELECT message_id, refs, subject FROM email.messages
		WHERE mailbox_id = $1 AND external_id = $2 ORDER BY created_at LIMIT 1`, mailboxID, externalID).
		Scan(&p.MessageID, &p.References, &p.Subject)
	if errors.Is(err, pgx.ErrNoRows) {
		return Parent{}, false, nil
	}
	if err != nil {
		return Parent{}, false, fmt.Errorf("find parent %s: %w", externalID, err)
	}
	return p, true, nil
}

// Token returns the thread's token, creating it on first use.
func (s *Store) Token(ctx context.Context, mailboxID, threadKey string) (string, error) {
	fresh, err := newToken()
	if err != nil {
		return "", err
	}
	var tok string
	err = s.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO email.threads (mailbox_id, thread_key, token) VALUES ($1, $2, $3)
			ON CONFLICT (mailbox_id, thread_key) DO NOTHING RETURNING token)
		SELECT token FROM ins UNION ALL
		SELECT token FROM email.threads WHERE mailbox_id = $1 AND thread_key = $2
		LIMIT 1`, mailboxID, threadKey, fresh).Scan(&tok)
	if err != nil {
		return "", fmt.Errorf("thread token: %w", err)
	}
	return tok, nil
}

// tokenEncoding writes tokens in lower-case letters and digits, which
// survive in local parts and subjects.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// tokenLen is the length of a token: 20 base32 characters, 100 random
// bits, so that nobody finds another thread's address by trying.
const tokenLen = 20

func newToken() (string, error) {
	var b [13]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("thread token: %w", err)
	}
	return tokenEncoding.EncodeToString(b[:])[:tokenLen], nil
}

// replyPrefix starts the local part of a reply address (subaddressing, RFC
// 5233): reply+<token>@<reply domain>.
const replyPrefix = "reply+"

var subjectToken = regexp.MustCompile(`(?i)\[#([a-z2-7]{20})\]`)

// ReplyAddress is the Reply-To of a thread's replies under domain.
func ReplyAddress(token, domain string) string { return replyPrefix + token + "@" + domain }

// ParseReplyAddress extracts the token of a reply address. addr may be
// bare or carry a display name ("Support <reply+tok@reply.example>"); case
// is ignored, since some relays change the case of local parts. ok is
// false for any other address.
func ParseReplyAddress(addr string) (token string, ok bool) {
	addr = strings.TrimSpace(addr)
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return "", false
	}
	local := strings.ToLower(addr[:at])
	token, found := strings.CutPrefix(local, replyPrefix)
	if !found || len(token) != tokenLen || strings.Trim(token, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		return "", false
	}
	return token, true
}

// TagSubject adds the thread's token to a subject, once.
func TagSubject(subject, token string) string {
	if t, ok := SubjectToken(subject); ok && t == token {
		return subject
	}
	return strings.TrimSpace(subject + " [#" + token + "]")
}

// SubjectToken returns the token in a subject's [#<token>].
func SubjectToken(subject string) (string, bool) {
	m := subjectToken.FindStringSubmatch(subject)
	if m == nil {
		return "", false
	}
	return strings.ToLower(m[1]), true
}
