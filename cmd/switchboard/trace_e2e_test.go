package main_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-oss/switchboard/pkg/testkit"
)

// recordedSpan is a span as the OTLP receiver got it.
type recordedSpan struct {
	TraceID, SpanID, ParentID string
	Name                      string
	Kind                      tracepb.Span_SpanKind
	Attrs                     map[string]any
	Links                     []string // span ids
}

func (s recordedSpan) String() string {
	return fmt.Sprintf("%s %q (%s, parent %s)", s.Kind, s.Name, s.SpanID, s.ParentID)
}

// spanRecorder is an OTLP/HTTP trace receiver: it keeps every span
// exported to it, in memory.
type spanRecorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []recordedSpan
	errs  []error
}

func newSpanRecorder(t *testing.T) *spanRecorder {
	t.Helper()
	r := &spanRecorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *spanRecorder) fail(w http.ResponseWriter, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	http.Error(w, err.Error(), http.StatusBadRequest)
}

func (r *spanRecorder) export(w http.ResponseWriter, req *http.Request) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			r.fail(w, fmt.Errorf("gunzip: %w", err))
			return
		}
		defer gz.Close()
		body = gz
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		r.fail(w, fmt.Errorf("read export: %w", err))
		return
	}
	var in collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &in); err != nil {
		r.fail(w, fmt.Errorf("decode export (%s): %w", req.Header.Get("Content-Type"), err))
		return
	}
	var got []recordedSpan
	for _, rs := range in.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				rec := recordedSpan{
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(), Kind: s.GetKind(),
					Attrs: map[string]any{},
				}
				for _, kv := range s.GetAttributes() {
					rec.Attrs[kv.GetKey()] = anyValue(kv.GetValue())
				}
				for _, l := range s.GetLinks() {
					rec.Links = append(rec.Links, hex.EncodeToString(l.GetSpanId()))
				}
				got = append(got, rec)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	out, err := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	if err != nil {
		r.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func anyValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_ArrayValue:
		var out []any
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValue(e))
		}
		return out
	default:
		return fmt.Sprint(v)
	}
}

// trace returns the spans of traceID, by span id.
func (r *spanRecorder) trace(t *testing.T, traceID string) map[string]recordedSpan {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Empty(t, r.errs, "exports the receiver could not read")
	out := map[string]recordedSpan{}
	for _, s := range r.spans {
		if s.TraceID == traceID {
			out[s.SpanID] = s
		}
	}
	return out
}

// all returns every span received.
func (r *spanRecorder) all() []recordedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// sseEvent is an event of GET /v1/stream.
type sseEvent struct {
	Event        string
	Conversation string
	Body         string
}

// openStream reads GET /v1/stream with token until ctx ends, and returns
// its events once the ready event came.
func openStream(t *testing.T, ctx context.Context, base, token string) <-chan sseEvent {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/stream", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out := make(chan sseEvent, 100)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Event != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				var d struct {
					Data struct {
						Conversation struct {
							ID string `json:"id"`
						} `json:"conversation"`
						Message struct {
							Body string `json:"body"`
						} `json:"message"`
					} `json:"data"`
				}
				if json.Unmarshal([]byte(line[len("data: "):]), &d) == nil {
					ev.Conversation, ev.Body = d.Data.Conversation.ID, d.Data.Message.Body
				}
			}
		}
	}()
	waitEvent(t, out, "the ready event", func(ev sseEvent) bool { return ev.Event == "ready" })
	return out
}

func waitEvent(t *testing.T, events <-chan sseEvent, what string, match func(sseEvent) bool) sseEvent {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "the stream ended before %s", what)
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s on the stream", what)
		}
	}
}

// TestOneTraceFromWebhookToStream runs the binary with its traces exported
// to an in-memory OTLP receiver, posts a chat webhook that carries a
// traceparent, and checks that one trace runs from the webhook through
// Kafka, the inbox's stored row, its outbox and Kafka again to the event's
// delivery on an agent's stream, every span a child of the one before.
func TestOneTraceFromWebhookToStream(t *testing.T) {
	recorder := newSpanRecorder(t)
	dbURL := testkit.DatabaseURL(t)
	b, err := testkit.CreateTenant(binary, dbURL, "Acme")
	require.NoError(t, err)
	startCtx, cancelStart := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelStart()
	node, err := testkit.StartNode(startCtx, testkit.NodeOptions{Binary: binary, DatabaseURL: dbURL, DataDir: t.TempDir(),
		Args: []string{"-otel.endpoint", recorder.srv.URL, "-otel.sample-ratio", "1"}})
	require.NoError(t, err)
	t.Cleanup(func() {
		node.Kill()
		if t.Failed() {
			t.Logf("switchboard output:\n%s", node.Logs())
		}
	})

	streamCtx, closeStream := context.WithCancel(context.Background())
	defer closeStream()
	stream := openStream(t, streamCtx, node.Base(), b.APIToken.Token)

	// The caller's own trace: the webhook joins it.
	traceID, callerSpan := randomHex(t, 16), randomHex(t, 8)
	const text = "where is my parcel?"
	body := []byte(`{"message_id":"trace-1","session_id":"session-trace","user":{"id":"user-1"},"text":"` + text + `"}`)
	req, err := testkit.ChatRequest(node.Base(), b, body, time.Now())
	require.NoError(t, err)
	req.Header.Set("traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	ev := waitEvent(t, stream, "the message's event", func(ev sseEvent) bool {
		return ev.Event == "sb.conversation.message.v1" && ev.Body == text
	})
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var messageID, conversationID string
	require.NoError(t, conn.QueryRow(context.Background(),
		`SELECT id::text, conversation_id::text FROM inbox.messages WHERE external_id = 'trace-1'`).Scan(&messageID, &conversationID))
	require.Equal(t, conversationID, ev.Conversation)

	// A graceful stop flushes the spans not exported yet.
	closeStream()
	node.Stop()
	spans := recorder.trace(t, traceID)
	require.NotEmpty(t, spans, "no span of the webhook's trace was exported")

	// The chain, from its end: the delivery to the agent's stream.
	var deliver recordedSpan
	for _, s := range spans {
		if s.Name == "stream.deliver" && s.Attrs["cloudevents.event_type"] == "sb.conversation.message.v1" {
			deliver = s
		}
	}
	require.NotEmpty(t, deliver.SpanID, "no stream.deliver span of the message event in the trace; got %v", spans)
	require.Equal(t, conversationID, deliver.Attrs["switchboard.conversation.id"])
	require.Equal(t, b.Tenant.ID, deliver.Attrs["switchboard.tenant.id"])

	// Walk up the parents: each is in the trace, up to the webhook's
	// server span, whose parent is the caller's span.
	var chain []recordedSpan
	for s := deliver; ; {
		chain = append([]recordedSpan{s}, chain...)
		if s.ParentID == callerSpan {
			break
		}
		parent, ok := spans[s.ParentID]
		require.True(t, ok, "the parent %s of %s is not in the trace", s.ParentID, s)
		s = parent
	}
	var names []string
	for _, s := range chain {
		names = append(names, s.Name)
	}
	require.Equal(t, []string{
		"POST /v1/webhooks/chat/{channel}/messages",
		"send sb.inbound.v1",
		"process sb.inbound.v1",
		"inbox.store",
		"send sb.conversations.v1",
		"process sb.conversations.v1",
		"stream.deliver",
	}, names, "the chain from the webhook to the stream")
	webhook, sendIn, processIn, store, sendConv, processConv := chain[0], chain[1], chain[2], chain[3], chain[4], chain[5]

	require.Equal(t, tracepb.Span_SPAN_KIND_SERVER, webhook.Kind)
	require.Equal(t, "POST", webhook.Attrs["http.request.method"])
	require.Equal(t, int64(http.StatusAccepted), webhook.Attrs["http.response.status_code"])

	for _, s := range []recordedSpan{sendIn, sendConv} {
		require.Equal(t, tracepb.Span_SPAN_KIND_PRODUCER, s.Kind, "%s", s)
		require.Equal(t, "kafka", s.Attrs["messaging.system"], "%s", s)
		require.Equal(t, "send", s.Attrs["messaging.operation.type"], "%s", s)
		require.Equal(t, "send", s.Attrs["messaging.operation.name"], "%s", s)
		require.Equal(t, strings.TrimPrefix(s.Name, "send "), s.Attrs["messaging.destination.name"], "%s", s)
		require.Contains(t, s.Attrs, "messaging.destination.partition.id", "%s", s)
	}
	require.NotEmpty(t, sendIn.Attrs["messaging.message.id"], "the inbound event's ce_id")
	require.Contains(t, sendIn.Attrs, "messaging.kafka.offset")

	for _, s := range []recordedSpan{processIn, processConv} {
		require.Equal(t, tracepb.Span_SPAN_KIND_CONSUMER, s.Kind, "%s", s)
		require.Equal(t, "kafka", s.Attrs["messaging.system"], "%s", s)
		require.Equal(t, "process", s.Attrs["messaging.operation.type"], "%s", s)
		require.Equal(t, "process", s.Attrs["messaging.operation.name"], "%s", s)
		require.Equal(t, strings.TrimPrefix(s.Name, "process "), s.Attrs["messaging.destination.name"], "%s", s)
		require.Contains(t, s.Attrs, "messaging.destination.partition.id", "%s", s)
		require.Contains(t, s.Attrs, "messaging.kafka.offset", "%s", s)
		require.Contains(t, s.Links, s.ParentID, "%s links to its creation context", s)
	}
	require.Equal(t, "switchboard-inbox", processIn.Attrs["messaging.consumer.group.name"])
	require.Equal(t, sendIn.Attrs["messaging.message.id"], processIn.Attrs["messaging.message.id"])
	require.NotContains(t, processConv.Attrs, "messaging.consumer.group.name", "the stream hub reads without a group")

	require.Equal(t, tracepb.Span_SPAN_KIND_INTERNAL, store.Kind)
	require.Equal(t, []any{messageID}, store.Attrs["switchboard.message.ids"], "the stored row")
	require.Equal(t, []any{conversationID}, store.Attrs["switchboard.conversation.ids"])

	// The other consumers of the conversation's events (qualification,
	// routing) link to the relay's send span too: as a child when they
	// handle the event alone, from a trace of their own when in a batch.
	require.True(t, slices.ContainsFunc(recorder.all(), func(s recordedSpan) bool {
		return s.Name == "process sb.conversations.v1" && s.Attrs["messaging.consumer.group.name"] == "switchboard-inbox-qualify" &&
			slices.Contains(s.Links, sendConv.SpanID)
	}), "the qualifier's process span links to the relay's send span")
}
