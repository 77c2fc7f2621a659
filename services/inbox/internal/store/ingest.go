package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/outbox"
	"github.com/switchboard-oss/switchboard/services/inbox/internal/domain"
)

// Inbound is one message to ingest.
type Inbound struct {
	EventID string
	Msg     events.MessageReceived
	// Language is the detected language, "" when unknown.
	Language string
}

// StoredMessage is an inbound message ingestion stored (not a duplicate).
type StoredMessage struct {
	ID             uuid.UUID
	ConversationID uuid.UUID
	// Index is the message's position in the batch.
	Index int
	// Tags were carried over from the conversation.
	Tags map[string]string
	// Language is the language routing detected, "" when it did not.
	Language string
}

// Touched is a conversation a batch brought new messages to, as it is
// after the batch.
type Touched struct {
	Conversation
	// Created: the batch opened it.
	Created bool
	// From is its state before the batch ("" when created).
	From domain.State
	// Key is its Kafka key.
	Key []byte
	// Classification is how routing placed it; nil when the batch did
	// not create it or routing changed nothing.
	Classification *Classification
}

// Reopened reports whether the customer's message moved it back to work.
func (t Touched) Reopened() bool { return !t.Created && t.From != t.State }

// IngestResult is what a batch did.
type IngestResult struct {
	// Stored are the messages stored, in batch order; duplicates are not.
	Stored []StoredMessage
	// Duplicates counts messages already stored.
	Duplicates int
	// Touched are the conversations that got new messages.
	Touched []Touched
}

// The input of a batch, as parallel arrays that unnest into rows. Set-based
// statements cost far less per message than one statement per message.
//
// Lookups into the big tables are written as correlated scalar subqueries,
// not joins: the statements are prepared once, while the tables are still
// empty, and a join planned then (a sequential scan feeding a hash) would
// cost more with every row stored. A scalar subquery is always an index
// probe per input row.
const ingestInput = `input AS (
	SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::uuid[], $7::text[],
	                     $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::timestamptz[], $13::timestamptz[], $14::text[],
	                     $15::text[], $16::text[], $17::bool[], $18::jsonb[], $19::text[])
	    AS i(ord, msg_id, event_id, tenant_id, channel, account_id, external_id,
	         thread_key, identity, body, metadata, sent_at, received_at, language,
	         subject, html, automatic, attachments, bot))`

// ingestCheck lists the messages whose channel account does not exist for
// their tenant and channel.
const ingestCheck = `SELECT coalesce(array_agg(i.ord), '{}')
FROM unnest($1::int[], $2::uuid[], $3::text[], $4::uuid[]) AS i(ord, tenant_id, channel, account_id)
WHERE (SELECT 1 FROM inbox.channel_accounts a
       WHERE a.id = i.account_id AND a.tenant_id = i.tenant_id AND a.channel = i.channel) IS NULL`

// ingestContacts gives every new channel identity a contact, named after
// the first message that brought it. Known identities are filtered out
// first (an index probe is cheaper than a conflicting insert); identities
// are claimed in key order so that concurrent batches wait for each other
// instead of deadlocking.
const ingestContacts = `WITH input AS (
	SELECT * FROM unnest($1::int[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[])
	    AS i(ord, tenant_id, channel, identity, name, avatar)),
claimed AS (
	INSERT INTO inbox.contact_identities AS ci (tenant_id, channel, identity, contact_id)
	SELECT DISTINCT ON (tenant_id, channel, identity) tenant_id, channel, identity, gen_random_uuid()
	FROM input i
	WHERE (SELECT 1 FROM inbox.contact_identities k
	       WHERE k.tenant_id = i.tenant_id AND k.channel = i.channel AND k.identity = i.identity) IS NULL
	ORDER BY tenant_id, channel, identity, ord
	ON CONFLICT DO NOTHING
	RETURNING ci.tenant_id, ci.channel, ci.identity, ci.contact_id)
INSERT INTO inbox.contacts (id, tenant_id, name, avatar_url, source)
SELECT c.contact_id, c.tenant_id, f.name, f.avatar, c.channel
FROM claimed c CROSS JOIN LATERAL (
	SELECT i.name, i.avatar FROM input i
	WHERE i.tenant_id = c.tenant_id AND i.channel = c.channel AND i.identity = c.identity
	ORDER BY i.ord LIMIT 1) f`

// ingestMessages opens the conversations the batch's threads do not have
// yet, then stores the messages not stored yet (with the tags of their
// conversation, carried over), and says for each message what happened.
// A message of the chat channel's bot (bot, its name, not NULL) is stored
// as the bot's: outbound, sent by the bot, author_kind bot.
const ingestMessages = `WITH ` + ingestInput + `,
threads AS (
	SELECT DISTINCT ON (i.account_id, i.thread_key) i.tenant_id, i.channel, i.account_id, i.thread_key, i.received_at AS first_at,
	       (SELECT x.id FROM inbox.conversations x WHERE x.channel_account_id = i.account_id AND x.thread_key = i.thread_key) AS existing,
	       (SELECT ci.contact_id FROM inbox.contact_identities ci
	         WHERE ci.tenant_id = i.tenant_id AND ci.channel = i.channel AND ci.identity = i.identity) AS contact_id
	FROM input i
	ORDER BY i.account_id, i.thread_key, i.ord),
created AS (
	INSERT INTO inbox.conversations AS c (id, tenant_id, contact_id, channel, channel_account_id, thread_key, started_at, last_message_at)
	SELECT gen_random_uuid(), tenant_id, contact_id, channel, account_id, thread_key, first_at, first_at
	FROM threads WHERE existing IS NULL
	ORDER BY account_id, thread_key
	ON CONFLICT (channel_account_id, thread_key) DO NOTHING
	RETURNING c.id, c.channel_account_id, c.thread_key, c.tags),
conv AS (
	SELECT t.existing AS id, t.account_id, t.thread_key,
	       (SELECT x.tags FROM inbox.conversations x WHERE x.id = t.existing) AS tags
	FROM threads t WHERE t.existing IS NOT NULL
	UNION ALL
	SELECT c.id, c.channel_account_id, c.thread_key, c.tags FROM created c),
stored AS (
	INSERT INTO inbox.messages (id, tenant_id, conversation_id, event_id, channel_account_id, external_id, direction,
	                            sender, body, metadata, sent_at, received_at, language, tags,
	                            subject, html, automatic, attachments, author_kind)
	SELECT i.msg_id, i.tenant_id, conv.id, i.event_id, i.account_id, i.external_id,
	       CASE WHEN i.bot IS NULL THEN 'inbound' ELSE 'outbound' END,
	       coalesce(i.bot, i.identity), i.body, i.metadata, i.sent_at, i.received_at, i.language, conv.tags,
	       i.subject, i.html, i.automatic, i.attachments, CASE WHEN i.bot IS NULL THEN NULL ELSE 'bot' END
	FROM input i JOIN conv ON conv.account_id = i.account_id AND conv.thread_key = i.thread_key
	ORDER BY i.ord
	ON CONFLICT (channel_account_id, external_id) DO NOTHING
	RETURNING id, conversation_id, tags)
SELECT 'm', i.ord, stored.conversation_id, stored.tags FROM input i JOIN stored ON stored.id = i.msg_id
UNION ALL
SELECT 'c', NULL, created.id, NULL FROM created`

// ingestUpdate applies the batch's new messages to their conversations:
// a customer writing moves an answered, deferred or done conversation back
// to new (domain.CustomerMessage, which a test holds this to), unless it is
// ignored. The sub-select locks the rows, in id order, and hands out their
// state before the update. $3 lists the customer messages of the batch
// when it holds messages of a chat channel's bot too (NULL: all are the
// customer's): a conversation that got only the bot's messages is not
// re-opened, not marked unread and keeps its last writer; it takes the
// new last message time and version.
const ingestUpdate = `UPDATE inbox.conversations c SET
	state = CASE WHEN n.customer AND NOT c.ignored AND c.state IN ('answered', 'deferred', 'done') THEN 'new' ELSE c.state END,
	previous_state = CASE WHEN n.customer AND NOT c.ignored AND c.state IN ('answered', 'deferred', 'done') THEN c.state ELSE c.previous_state END,
	assignee_ids = CASE WHEN n.customer AND NOT c.ignored AND c.state IN ('answered', 'deferred', 'done') THEN '{}' ELSE c.assignee_ids END,
	deferred_until = CASE WHEN n.customer AND NOT c.ignored AND c.state IN ('answered', 'deferred', 'done') THEN NULL ELSE c.deferred_until END,
	state_version = CASE WHEN n.customer AND NOT c.ignored AND c.state IN ('answered', 'deferred', 'done') THEN c.version + 1 ELSE c.state_version END,
	state_since = CASE WHEN n.customer AND NOT c.ignored AND c.state IN ('answered', 'deferred', 'done') THEN $2 ELSE c.state_since END,
	version = c.version + 1,
	last_message_at = greatest(c.last_message_at, n.last_at),
	unread = c.unread OR (n.customer AND NOT c.ignored),
	last_writer = CASE WHEN n.customer THEN 'customer' ELSE c.last_writer END,
	updated_at = $2
FROM (SELECT o.id, o.state AS old_state,
             (SELECT max(m.received_at) FROM inbox.messages m WHERE m.conversation_id = o.id) AS last_at,
             $3::uuid[] IS NULL OR o.id = ANY(ARRAY(SELECT m.conversation_id FROM inbox.messages m WHERE m.id = ANY($3::uuid[]))) AS customer
      FROM inbox.conversations o
      WHERE o.id = ANY(ARRAY(SELECT m.conversation_id FROM inbox.messages m WHERE m.id = ANY($1::uuid[])))
      ORDER BY o.id
      FOR UPDATE) n
WHERE c.id = n.id
RETURNING n.old_state, ` + conversationColumns

// ingestConsent records what the batch's STOP and START texts say on
// their senders' SMS identities. Its input holds only the messages that
// carry a consent (the statement is not sent when none does), and of those
// only the ones this batch stored count: a redelivered STOP must not undo
// the START that followed it. The latest message of each sender wins, and
// so does an identity's newer choice over a message received before it.
// The identities are locked in key order, like ingestUpdate's
// conversations, so that concurrent batches wait instead of deadlocking.
const ingestConsent = `UPDATE inbox.contact_identities ci SET consent = n.consent, consent_changed_at = n.at
FROM (SELECT k.tenant_id, k.identity, c.consent, c.at
      FROM (SELECT DISTINCT ON (i.tenant_id, i.identity) i.tenant_id, i.identity, i.consent, i.at
            FROM unnest($1::int[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[])
                AS i(ord, msg_id, tenant_id, identity, consent, at)
            WHERE (SELECT 1 FROM inbox.messages m WHERE m.id = i.msg_id) IS NOT NULL
            ORDER BY i.tenant_id, i.identity, i.at DESC, i.ord DESC) c
      JOIN inbox.contact_identities k ON k.tenant_id = c.tenant_id AND k.channel = 'sms' AND k.identity = c.identity
      WHERE k.consent_changed_at IS NULL OR k.consent_changed_at <= c.at
      ORDER BY k.tenant_id, k.identity
      FOR UPDATE OF k) n
WHERE ci.tenant_id = n.tenant_id AND ci.channel = 'sms' AND ci.identity = n.identity`

// Ingest stores messages in one transaction, each once, applies what they
// do to their conversations (a customer writing re-opens an answered,
// deferred or done conversation), audits the state changes, and commits
// the events announce builds from the result with them, through the
// outbox.
//
// A message of the SMS connector carrying Metadata["consent"] opted_out
// (STOP) or opted_in (START) sets its sender's SMS identity's consent.
//
// Each conversation the batch creates is placed by its tenant's routing
// rules and its channel account's default queue (see ingest_routing.go);
// detect (nil: never) detects the language of its first message when a
// rule asks for one.
//
// The transaction takes two round trips to PostgreSQL: BEGIN and the
// reading statements (and the consent update, when a message carries
// one) go in one pipeline; the updates, the audit, the events and COMMIT
// in a second.
func (s *Store) Ingest(ctx context.Context, msgs []Inbound, now time.Time, detect func(text string) string, announce func(IngestResult) ([]outbox.Record, error)) (IngestResult, error) {
	a, err := newIngestArrays(msgs)
	if err != nil {
		return IngestResult{}, err
	}
	var res IngestResult
	err = s.pipelined(ctx, func(ctx context.Context, conn *pgx.Conn) (*pgx.Batch, error) {
		b := &pgx.Batch{}
		b.Queue("BEGIN")
		// Plan each statement for this batch: plans cached while the tables
		// were small would scan what is now large.
		b.Queue("SET LOCAL enable_seqscan = off")
		b.Queue(ingestCheck, a.ords, a.tenants, a.channels, a.accounts)
		b.Queue(ingestContacts, a.ords, a.tenants, a.channels, a.idents, a.names, a.avatars)
		b.Queue(ingestMessages, a.ords, a.ids, a.eventIDs, a.tenants, a.channels, a.accounts, a.externals,
			a.threads, a.idents, a.bodies, a.metadata, a.sentAt, a.received, a.languages,
			a.subjects, a.htmls, a.automatic, a.attachments, a.bots)
		b.Queue(ingestUpdate, a.ids, now, a.customerIDs())
		if a.consent.any() {
			c := &a.consent
			b.Queue(ingestConsent, c.ords, c.ids, c.tenants, c.idents, c.values, c.at)
		}
		queueRoutingReads(b, a)
		var (
			err     error
			routing routingInput
		)
		if res, routing, err = readIngest(conn.SendBatch(ctx, b), msgs, a); err != nil {
			return nil, err
		}
		b = &pgx.Batch{}
		classify(b, routing, msgs, a, &res, detect)
		var audit []auditEntry
		for i := range res.Touched {
			t := &res.Touched[i]
			t.Key = t.EventKey()
			switch {
			case t.Created:
				audit = append(audit, auditEntry{tenant: t.Tenant, conversation: t.ID, actorKind: "customer", actorID: t.ContactID.String(),
					action: domain.ActionCreated, to: domain.StateNew, reason: t.Classification.Reason(), data: t.Classification.Data(), at: now})
			case t.Reopened():
				audit = append(audit, auditEntry{tenant: t.Tenant, conversation: t.ID, actorKind: "customer", actorID: t.ContactID.String(),
					action: domain.ActionCustomerMessage, from: t.From, to: t.State, reason: "the customer wrote again", at: now})
			}
		}
		queueAudit(b, audit)
		if announce != nil {
			recs, err := announce(res)
			if err != nil {
				return nil, err
			}
			if err := s.outbox.Queue(ctx, b, recs...); err != nil {
				return nil, err
			}
		}
		return b, nil
	})
	if err != nil {
		return IngestResult{}, err
	}
	return res, nil
}

// readIngest reads the results of the first pipeline of Ingest.
func readIngest(br pgx.BatchResults, msgs []Inbound, a *ingestArrays) (res IngestResult, routing routingInput, err error) {
	defer func() {
		if cerr := br.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("ingest batch: %w", cerr)
		}
	}()
	for _, step := range []string{"begin", "set plan mode"} {
		if _, err := br.Exec(); err != nil {
			return res, routing, fmt.Errorf("%s: %w", step, err)
		}
	}
	var unknown []int32
	if err := br.QueryRow().Scan(&unknown); err != nil {
		return res, routing, fmt.Errorf("check channel accounts: %w", err)
	}
	if len(unknown) > 0 {
		m := msgs[unknown[0]].Msg
		return res, routing, fmt.Errorf("%w: %s of tenant %s on channel %s", ErrUnknownAccount, m.ChannelAccountID, m.TenantID, m.Channel)
	}
	if _, err := br.Exec(); err != nil {
		return res, routing, fmt.Errorf("store contacts: %w", err)
	}

	rows, err := br.Query()
	if err != nil {
		return res, routing, fmt.Errorf("store messages: %w", err)
	}
	created := map[uuid.UUID]bool{}
	for rows.Next() {
		var (
			kind   string
			ord    *int32
			convID uuid.UUID
			tags   []byte
		)
		if err := rows.Scan(&kind, &ord, &convID, &tags); err != nil {
			rows.Close()
			return res, routing, fmt.Errorf("store messages: %w", err)
		}
		if kind == "c" {
			created[convID] = true
			continue
		}
		m := StoredMessage{ID: a.ids[*ord], ConversationID: convID, Index: int(*ord)}
		if err := json.Unmarshal(tags, &m.Tags); err != nil {
			rows.Close()
			return res, routing, fmt.Errorf("decode carried tags: %w", err)
		}
		res.Stored = append(res.Stored, m)
	}
	if err := rows.Err(); err != nil {
		return res, routing, fmt.Errorf("store messages: %w", err)
	}
	res.Duplicates = len(msgs) - len(res.Stored)

	rows, err = br.Query()
	if err != nil {
		return res, routing, fmt.Errorf("update conversations: %w", err)
	}
	res.Touched, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Touched, error) {
		var t Touched
		var from string
		c, err := scanConversation(prefixed{row, &from})
		if err != nil {
			return t, err
		}
		t.Conversation, t.Created = c, created[c.ID]
		if !t.Created {
			t.From = domain.State(from)
		}
		return t, nil
	})
	if err != nil {
		return res, routing, fmt.Errorf("update conversations: %w", err)
	}
	if a.consent.any() {
		if _, err := br.Exec(); err != nil {
			return res, routing, fmt.Errorf("record consent: %w", err)
		}
	}
	routing, err = readRoutingInput(br)
	return res, routing, err
}

// prefixed scans one leading column into first, then hands the rest of
// the row to a scanner of the usual columns.
type prefixed struct {
	pgx.CollectableRow
	first any
}

func (p prefixed) Scan(dest ...any) error {
	return p.CollectableRow.Scan(append([]any{p.first}, dest...)...)
}

// ingestArrays are the columns of a batch.
type ingestArrays struct {
	ords      []int32
	ids       [][16]byte
	eventIDs  []string
	tenants   [][16]byte
	channels  []string
	accounts  [][16]byte
	externals []string
	threads   []string
	idents    []string
	names     []string
	avatars   []string
	bodies    []string
	metadata  []*string
	sentAt    []*time.Time
	received  []time.Time
	languages []string
	// The email fields: NULL (nil) when the message has none.
	subjects    []*string
	htmls       []*string
	automatic   []bool
	attachments []*string
	// bots are the names of the chat bots that wrote messages, NULL (nil)
	// for a customer's.
	bots []*string
	// anyBot: some message is a bot's.
	anyBot bool
	// consent holds the messages that carry a consent change, apart: most
	// carry none, and cost nothing more for it.
	consent consentArrays
}

// consentArrays are the columns of ingestConsent: the SMS messages of a
// batch whose Metadata["consent"] is opted_out or opted_in.
type consentArrays struct {
	ords    []int32
	ids     [][16]byte
	tenants [][16]byte
	idents  []string
	values  []string
	at      []time.Time
}

func (c *consentArrays) any() bool { return len(c.ords) > 0 }

// customerIDs are the ids of the customers' messages when some message of
// the batch is a bot's, nil otherwise (ingestUpdate's $3).
func (a *ingestArrays) customerIDs() [][16]byte {
	if !a.anyBot {
		return nil
	}
	ids := make([][16]byte, 0, len(a.ids))
	for i, id := range a.ids {
		if a.bots[i] == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// Values of the SMS connector's Metadata["consent"] that change what a
// customer agreed to; "help" changes nothing.
const (
	ConsentOptedOut = "opted_out"
	ConsentOptedIn  = "opted_in"
)

// newIngestArrays turns messages into the columns of a batch.
func newIngestArrays(msgs []Inbound) (*ingestArrays, error) {
	n := len(msgs)
	a := &ingestArrays{
		ords: make([]int32, n), ids: make([][16]byte, n), eventIDs: make([]string, n), tenants: make([][16]byte, n),
		channels: make([]string, n), accounts: make([][16]byte, n), externals: make([]string, n), threads: make([]string, n),
		idents: make([]string, n), names: make([]string, n), avatars: make([]string, n), bodies: make([]string, n),
		metadata: make([]*string, n), sentAt: make([]*time.Time, n), received: make([]time.Time, n),
		languages: make([]string, n), subjects: make([]*string, n), htmls: make([]*string, n), automatic: make([]bool, n),
		attachments: make([]*string, n), bots: make([]*string, n),
	}
	for i, in := range msgs {
		m := in.Msg
		// UUIDs go as 16 bytes: pgx has a binary plan for those, not for
		// strings (it would build an error, then fall back to text).
		tenant, err := uuid.Parse(m.TenantID)
		if err != nil {
			return nil, fmt.Errorf("%w: tenant_id %q is not a UUID", ErrUnknownAccount, m.TenantID)
		}
		account, err := uuid.Parse(m.ChannelAccountID)
		if err != nil {
			return nil, fmt.Errorf("%w: channel_account_id %q is not a UUID", ErrUnknownAccount, m.ChannelAccountID)
		}
		// Time-ordered ids keep the primary key index append-only.
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("message id: %w", err)
		}
		if len(m.Metadata) > 0 {
			raw, err := json.Marshal(m.Metadata)
			if err != nil {
				return nil, fmt.Errorf("encode metadata: %w", err)
			}
			s := string(raw)
			a.metadata[i] = &s
		}
		if !m.SentAt.IsZero() {
			t := m.SentAt
			a.sentAt[i] = &t
		}
		a.ords[i], a.ids[i], a.eventIDs[i], a.tenants[i], a.channels[i], a.accounts[i] = int32(i), id, in.EventID, tenant, m.Channel, account
		a.externals[i], a.threads[i], a.idents[i], a.names[i], a.avatars[i], a.bodies[i], a.received[i] = m.ExternalID, m.ThreadKey, m.From.Identity, m.From.Name, m.From.AvatarURL, m.Text, m.ReceivedAt
		a.languages[i] = in.Language
		if m.Subject != "" {
			a.subjects[i] = &m.Subject
		}
		if m.HTML != "" {
			a.htmls[i] = &m.HTML
		}
		a.automatic[i] = m.Automatic
		if m.Bot != nil {
			name := m.Bot.Name
			a.bots[i], a.anyBot = &name, true
		}
		if m.Channel == events.ChannelSMS {
			if v := m.Metadata["consent"]; v == ConsentOptedOut || v == ConsentOptedIn {
				c := &a.consent
				c.ords, c.ids, c.tenants = append(c.ords, int32(i)), append(c.ids, id), append(c.tenants, tenant)
				c.idents, c.values, c.at = append(c.idents, m.From.Identity), append(c.values, v), append(c.at, m.ReceivedAt)
			}
		}
		if len(m.Attachments) > 0 {
			raw, err := json.Marshal(m.Attachments)
			if err != nil {
				return nil, fmt.Errorf("encode attachments: %w", err)
			}
			s := string(raw)
			a.attachments[i] = &s
		}
	}
	return a, nil
}
