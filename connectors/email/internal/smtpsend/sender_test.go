package smtpsend

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/switchboard-oss/switchboard/pkg/events"
	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

func composed(t *testing.T, id string) Outgoing {
	t.Helper()
	out, err := Compose(testCommand(id), testMailbox(), Thread{}, time.Now(), nil)
	require.NoError(t, err)
	return out
}

// testSender has timeouts short enough for a test that goes wrong to end.
func testSender() *Sender {
	return &Sender{DialTimeout: 5 * time.Second, CommandTimeout: 10 * time.Second, SubmissionTimeout: 10 * time.Second, MessageTimeout: 30 * time.Second}
}

func TestSendModes(t *testing.T) {
	tests := []struct {
		name    string
		mode    serverMode
		tls     string
		wantTLS bool
	}{
		{"plain with AUTH PLAIN", plainServer, events.TLSNone, false},
		{"STARTTLS with a self-signed certificate", startTLSServer, events.TLSStartTLS, true},
		{"implicit TLS", implicitTLSServer, events.TLSImplicit, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.mode)
			out := composed(t, "m-"+tt.tls)
			require.NoError(t, testSender().Send(testkit.Context(t), ts.server(tt.tls), out))

			msgs := ts.messages()
			require.Len(t, msgs, 1)
			require.Equal(t, "agent", msgs[0].User)
			require.Equal(t, tt.wantTLS, msgs[0].TLS)
			require.Equal(t, "support@shop.example", msgs[0].From)
			require.Equal(t, []string{"ann@customer.example", "boss@customer.example"}, msgs[0].Rcpts)
			require.Equal(t, string(out.Raw), string(msgs[0].Data))
		})
	}
}

func TestSendXOAUTH2(t *testing.T) {
	ts := startServer(t, plainServer)
	server := events.MailServer{Host: ts.host, Port: ts.port, TLS: events.TLSNone, Username: "agent@shop.example", OAuth2Token: "good-token"}
	require.NoError(t, testSender().Send(testkit.Context(t), server, composed(t, "m-oauth")))
	msgs := ts.messages()
	require.Len(t, msgs, 1)
	require.Equal(t, "agent@shop.example", msgs[0].User)

	server.OAuth2Token = "expired"
	err := testSender().Send(testkit.Context(t), server, composed(t, "m-oauth2"))
	var se *SendError
	require.ErrorAs(t, err, &se)
	require.False(t, se.Temporary, "a refused token is permanent: %v", err)
	require.Equal(t, 535, se.Code)
}

func TestSendErrors(t *testing.T) {
	t.Run("certificate not trusted", func(t *testing.T) {
		ts := startServer(t, startTLSServer)
		server := ts.server(events.TLSStartTLS)
		server.InsecureSkipVerify = false
		err := testSender().Send(testkit.Context(t), server, composed(t, "m"))
		require.True(t, IsPermanent(err), "got %v", err)
		require.Empty(t, ts.messages())
	})

	t.Run("STARTTLS required but not offered", func(t *testing.T) {
		ts := startServer(t, plainServer)
		err := testSender().Send(testkit.Context(t), ts.server(events.TLSStartTLS), composed(t, "m"))
		require.True(t, IsPermanent(err), "got %v", err)
		require.Contains(t, err.Error(), "STARTTLS")
	})

	t.Run("wrong password", func(t *testing.T) {
		ts := startServer(t, plainServer)
		server := ts.server(events.TLSNone)
		server.Password = "wrong"
		err := testSender().Send(testkit.Context(t), server, composed(t, "m"))
		var se *SendError
		require.ErrorAs(t, err, &se)
		require.False(t, se.Temporary)
		require.Equal(t, 535, se.Code)
	})

	t.Run("4xx is temporary", func(t *testing.T) {
		ts := startServer(t, plainServer)
		ts.failNextData(smtpErr(451, "Try again later"))
		err := testSender().Send(testkit.Context(t), ts.server(events.TLSNone), composed(t, "m"))
		var se *SendError
		require.ErrorAs(t, err, &se)
		require.True(t, se.Temporary)
		require.Equal(t, "451 4.0.0 Try again later", se.Reply)
	})

	t.Run("5xx is permanent with the server's reply", func(t *testing.T) {
		ts := startServer(t, plainServer)
		ts.mu.Lock()
		ts.rcptErr = &smtpError550
		ts.mu.Unlock()
		err := testSender().Send(testkit.Context(t), ts.server(events.TLSNone), composed(t, "m"))
		var se *SendError
		require.ErrorAs(t, err, &se)
		require.False(t, se.Temporary)
		require.Equal(t, 550, se.Code)
		require.Equal(t, "550 5.1.1 No such user here", se.Reply)
	})

	t.Run("connection refused is temporary", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		require.NoError(t, ln.Close())
		err = testSender().Send(testkit.Context(t), events.MailServer{Host: "127.0.0.1", Port: port, TLS: events.TLSNone}, composed(t, "m"))
		var se *SendError
		require.ErrorAs(t, err, &se)
		require.True(t, se.Temporary, "got %v", err)
	})

	t.Run("unknown TLS mode", func(t *testing.T) {
		err := testSender().Send(testkit.Context(t), events.MailServer{Host: "127.0.0.1", Port: 1, TLS: "ssl"}, composed(t, "m"))
		require.True(t, IsPermanent(err), "got %v", err)
	})

	t.Run("cancelled context is not a send failure", func(t *testing.T) {
		// A listener that accepts and never greets.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		var mu sync.Mutex
		var conns []net.Conn
		accepted := make(chan struct{})
		go func() {
			defer close(accepted)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			_ = ln.Close()
			<-accepted
			for _, c := range conns {
				_ = c.Close()
			}
		})
		ctx, cancel := context.WithCancel(testkit.Context(t))
		done := make(chan error, 1)
		go func() {
			done <- testSender().Send(ctx, events.MailServer{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, TLS: events.TLSNone}, composed(t, "m"))
		}()
		cancel()
		err = <-done
		require.ErrorIs(t, err, context.Canceled)
		var se *SendError
		require.False(t, errors.As(err, &se), "got %v", err)
	})
}

var smtpError550 = smtpErrValue(550, "5.1.1", "No such user here")

func TestReplyText(t *testing.T) {
	e := smtpErrValue(421, "", "Service not available")
	if got := replyText(&e); !strings.HasPrefix(got, "421 ") || !strings.HasSuffix(got, "Service not available") {
		t.Errorf("replyText = %q", got)
	}
}
