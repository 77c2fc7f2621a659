package events_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/events"
)

func TestRoundTripThroughKafkaHeaders(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("test").Start(context.Background(), "webhook")
	defer span.End()

	at := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)
	ev, err := events.New(events.TypeMessageReceived, "switchboard/chat", "tenant-1", at, map[string]string{"text": "bonjour"})
	require.NoError(t, err)
	ev.Subject = "conversation-9"
	m := ev.Message(ctx, events.TopicInbound, []byte("key"))

	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	require.Equal(t, "1.0", h["ce_specversion"])
	require.Equal(t, ev.ID, h["ce_id"])
	require.Equal(t, "sb.message.received.v1", h["ce_type"])
	require.Equal(t, "tenant-1", h["ce_tenant"])
	require.Equal(t, "application/json", h["content-type"])
	require.True(t, strings.HasPrefix(h["traceparent"], "00-"+span.SpanContext().TraceID().String()))

	got, gctx, err := events.FromMessage(context.Background(), m)
	require.NoError(t, err)
	require.Equal(t, ev.ID, got.ID)
	require.Equal(t, ev.Type, got.Type)
	require.Equal(t, ev.Source, got.Source)
	require.True(t, ev.Time.Equal(got.Time))
	require.Equal(t, ev.Tenant, got.Tenant)
	require.Equal(t, ev.Subject, got.Subject)
	require.JSONEq(t, `{"text":"bonjour"}`, string(got.Data))
	require.Equal(t, span.SpanContext().TraceID(), trace.SpanContextFromContext(gctx).TraceID())
}

func TestFromMessageRefusesWhatIsNotAnEvent(t *testing.T) {
	good, err := events.New("sb.thing.v1", "src", "", time.Now(), 1)
	require.NoError(t, err)
	base := good.Message(context.Background(), "t", nil)
	without := func(key string) kafka.Message {
		m := base
		m.Headers = nil
		for _, h := range base.Headers {
			if h.Key != key {
				m.Headers = append(m.Headers, h)
			}
		}
		return m
	}
	with := func(key, value string) kafka.Message {
		m := without(key)
		m.Headers = append(m.Headers, kafka.Header{Key: key, Value: []byte(value)})
		return m
	}
	cases := map[string]kafka.Message{
		"no headers":        {Value: []byte(`{}`)},
		"no id":             without("ce_id"),
		"unversioned type":  with("ce_type", "sb.thing"),
		"foreign type":      with("ce_type", "com.example.thing.v1"),
		"bad time":          with("ce_time", "yesterday"),
		"other specversion": with("ce_specversion", "0.3"),
		"xml content":       with("content-type", "application/xml"),
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := events.FromMessage(context.Background(), m)
			require.True(t, errors.Is(err, events.ErrInvalid), "FromMessage(%s) = %v, want ErrInvalid", name, err)
		})
	}
}

func TestDecodeRefusesDataThatIsNotJSON(t *testing.T) {
	good, err := events.New("sb.thing.v1", "src", "", time.Now(), 1)
	require.NoError(t, err)
	m := good.Message(context.Background(), "t", nil)
	m.Value = []byte("{")
	ev, _, err := events.FromMessage(context.Background(), m)
	require.NoError(t, err, "the envelope is fine")
	var v any
	require.ErrorIs(t, ev.Decode(&v), events.ErrInvalid)
	require.ErrorIs(t, ev.Validate(), events.ErrInvalid)
}

func TestMessageReceivedValidate(t *testing.T) {
	valid := func() events.MessageReceived {
		return events.MessageReceived{
			TenantID: "t", Channel: "chat", ChannelAccountID: "a", ExternalID: "m1", ThreadKey: "s1",
			From: events.Party{Identity: "u1"}, Text: "hello", ReceivedAt: time.Now(),
		}
	}
	v := valid()
	require.NoError(t, v.Validate())
	cases := []struct {
		field string
		edit  func(m *events.MessageReceived)
	}{
		{"tenant_id", func(m *events.MessageReceived) { m.TenantID = "" }},
		{"channel", func(m *events.MessageReceived) { m.Channel = "fax" }},
		{"external_id", func(m *events.MessageReceived) { m.ExternalID = strings.Repeat("x", 257) }},
		{"thread_key", func(m *events.MessageReceived) { m.ThreadKey = "" }},
		{"from.identity", func(m *events.MessageReceived) { m.From.Identity = "bad\xff" }},
		{"text", func(m *events.MessageReceived) { m.Text = "   " }},
		{"text", func(m *events.MessageReceived) { m.Text = "nul\x00byte" }},
		{"text", func(m *events.MessageReceived) { m.Text = strings.Repeat("a", events.MaxTextBytes+1) }},
		{"received_at", func(m *events.MessageReceived) { m.ReceivedAt = time.Time{} }},
		{"metadata", func(m *events.MessageReceived) {
			m.Metadata = map[string]string{}
			for i := 0; i < 40; i++ {
				m.Metadata[strings.Repeat("k", i+1)] = "v"
			}
		}},
		{"metadata.k", func(m *events.MessageReceived) { m.Metadata = map[string]string{"k": strings.Repeat("v", 2000)} }},
		{"subject", func(m *events.MessageReceived) { m.Subject = strings.Repeat("s", events.MaxSubjectBytes+1) }},
		{"html", func(m *events.MessageReceived) { m.HTML = "<p>\x00</p>" }},
		{"attachments", func(m *events.MessageReceived) {
			m.Attachments = make([]events.Attachment, events.MaxAttachments+1)
		}},
		{"attachments[0].blob_key", func(m *events.MessageReceived) {
			m.Attachments = []events.Attachment{{Name: "a.pdf", ContentType: "application/pdf", Size: 3}}
		}},
		{"attachments[1].size", func(m *events.MessageReceived) {
			m.Attachments = []events.Attachment{{Name: "a", BlobKey: "k"}, {Name: "b", BlobKey: "k", Size: -1}}
		}},
	}
	m := valid()
	m.Subject, m.HTML, m.Automatic = "Réclamation", "<p>Bonjour</p>", true
	m.Attachments = []events.Attachment{{Name: "a.pdf", ContentType: "application/pdf", Size: 3, BlobKey: "sha256/ab"}, {Name: "huge.iso", Size: 1 << 40, Skipped: "larger than 25 MiB"}}
	require.NoError(t, m.Validate())
	for _, c := range cases {
		m := valid()
		c.edit(&m)
		err := m.Validate()
		var fe *events.FieldError
		require.True(t, errors.As(err, &fe), "Validate() = %v, want a FieldError on %s", err, c.field)
		require.Equal(t, c.field, fe.Field)
	}
}

func TestValidTypes(t *testing.T) {
	for typ, want := range map[string]bool{
		"sb.message.received.v1":    true,
		"sb.config.chat_channel.v2": true,
		"sb.thing.v10":              true,
		"sb.x.v1":                   true,
		"sb.v1":                     false,
		"sb.thing.v0":               false,
		"sb.thing.v01":              false,
		"sb.thing":                  false,
		"sb..thing.v1":              false,
		"sb.Thing.v1":               false,
		"sb.thing.v1x":              false,
		"com.example.thing.v1":      false,
		"sb.thing-x.v1":             false,
		"":                          false,
	} {
		ev := events.Event{ID: "1", Type: typ, Source: "s", Time: time.Now()}
		if got := ev.Validate() == nil; got != want {
			t.Errorf("Validate() of type %q: valid = %v, want %v", typ, got, want)
		}
	}
}
