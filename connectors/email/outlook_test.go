package email

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// threadIndex is an Outlook Thread-Index: the conversation's root (a
// reserved byte, five bytes of a FILETIME, a GUID) and a 5-byte block per
// reply.
func threadIndex(replies int) string {
	b := []byte{0x01, 0xdc, 0x9a, 0x11, 0x42, 0x7e, 0x5f, 0x2b, 0x8c, 0x41, 0x0d, 0x93, 0x4e, 0x27, 0xa1, 0x6c, 0x3b, 0xd4, 0x90, 0x15, 0x77, 0xe2}
	for i := 0; i < replies; i++ {
		b = append(b, 0x00, 0x00, 0x01, 0x2c, byte(0x40+i))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// TestOutlookThreadingAndTheTenantsOwnMail runs Outlook's threading, the
// tenant's own domains and the sender fallback through the connector and
// its tables.
func TestOutlookThreadingAndTheTenantsOwnMail(t *testing.T) {
	e := startConnector(t)
	srv := startIMAP(t)
	alice := srv.user(t, "alice")
	srv.user(t, "bob")
	srv.user(t, "carol")
	// Another mailbox of the tenant, on its own domain, and one of another
	// tenant: only the first domain is the tenant's.
	acme := srv.mailbox("bob", "", nil)
	acme.Address = "help@acme.example"
	other := srv.mailbox("carol", "", nil)
	other.TenantID, other.Address = uuid.NewString(), "help@other.example"
	e.publishMailbox(acme)
	e.publishMailbox(other)
	mb := srv.mailbox("alice", "", nil)
	e.publishMailbox(mb)

	for _, m := range [][]byte{
		simpleMail("o1@customer.example", "Kunde <kunde@customer.example>", "Bestellung 42",
			"Thread-Topic: Bestellung 42", "Thread-Index: "+threadIndex(0)),
		// A colleague's Outlook answers through a gateway that dropped
		// In-Reply-To and References.
		simpleMail("o2@customer.example", "Kollege <kollege@customer.example>", "AW: Bestellung 42",
			"Thread-Topic: Bestellung 42", "Thread-Index: "+threadIndex(2)),
		// The same conversation root on another topic: not joined.
		simpleMail("o3@customer.example", "Kunde <kunde@customer.example>", "Rechnung 7",
			"Thread-Topic: Rechnung 7", "Thread-Index: "+threadIndex(1)),
		simpleMail("n1@mail.acme.example", "Acme Shop <shop@acme.example>", "Your order has shipped"),
		simpleMail("n2@other.example", "Other <help@other.example>", "Hello"),
		simpleMail("f1@customer.example", "<>", "Where is my order?", "Reply-To: Kunde <kunde@customer.example>"),
	} {
		appendMail(t, alice, "INBOX", m)
	}

	first := e.received(mb.ID, "o1@customer.example", 1).Msg
	require.Equal(t, "o1@customer.example", first.ThreadKey)
	require.Equal(t, first.ThreadKey, e.received(mb.ID, "o2@customer.example", 1).Msg.ThreadKey, "the Outlook reply joins by its Thread-Index")
	require.Equal(t, "o3@customer.example", e.received(mb.ID, "o3@customer.example", 1).Msg.ThreadKey, "another topic starts its own thread")

	own := e.received(mb.ID, "n1@mail.acme.example", 1).Msg
	require.True(t, own.Automatic, "a mail with a Message-ID on the tenant's domain is the tenant's own")
	require.Equal(t, "Message-ID on own domain mail.acme.example", own.Metadata["automatic_reason"])
	require.False(t, e.received(mb.ID, "n2@other.example", 1).Msg.Automatic, "another tenant's domain is not ours")

	noFrom := e.received(mb.ID, "f1@customer.example", 1).Msg
	require.Equal(t, "kunde@customer.example", noFrom.From.Identity, "the sender comes from Reply-To")
	require.Equal(t, "Kunde", noFrom.From.Name)

	var roots int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM email.thread_roots WHERE mailbox_id = $1`, mb.ID).Scan(&roots))
	require.Equal(t, 2, roots, "one root per topic")
}

func TestOwnDomainsLeaveSharedProvidersOut(t *testing.T) {
	m := newMailboxes(nil, nil, nil)
	for _, a := range []string{"support@Acme.example", "help@acme.example", "acme.support@gmail.com", "acme@hotmail.fr", "x@yahoo.co.jp", "help@shop.example."} {
		mb := newMailbox("127.0.0.1", 1, "u", "p", "")
		mb.Address = a
		m.byID[uuid.NewString()] = mb
	}
	other := newMailbox("127.0.0.1", 1, "u", "p", "")
	other.TenantID, other.Address = uuid.NewString(), "help@other.example"
	m.byID[other.ID] = other
	require.Equal(t, []string{"acme.example", "shop.example"}, m.ownDomains(testTenant))
	require.Equal(t, []string{"other.example"}, m.ownDomains(other.TenantID))
}
