package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchboard-oss/switchboard/pkg/telemetry"
)

func TestLogsCarryTheTraceEvenWithoutAnExporter(t *testing.T) {
	var out bytes.Buffer
	cfg := telemetry.Config{LogLevel: "info", LogFormat: "json", SampleRatio: 1}
	require.NoError(t, cfg.Validate(""))
	tel, err := telemetry.New(context.Background(), cfg, "switchboard", "test", &out)
	require.NoError(t, err)
	defer tel.Shutdown(context.Background())

	ctx, span := tel.Tracer.Tracer("t").Start(context.Background(), "webhook")
	tel.Component("chat").InfoContext(ctx, "accepted", "n", 1)
	span.End()
	tel.Logger.Info("no trace here")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2)
	var first, second map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
	require.Equal(t, span.SpanContext().TraceID().String(), first["trace_id"])
	require.Equal(t, "chat", first["component"])
	require.NotContains(t, second, "trace_id")
}

func TestMetricsAreServedInPrometheusFormat(t *testing.T) {
	tel := telemetry.Discard()
	c, err := tel.Meter.Meter("t").Int64Counter("switchboard.test.things", metric.WithDescription("Things."))
	require.NoError(t, err)
	c.Add(context.Background(), 3)
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Contains(t, rec.Body.String(), "switchboard_test_things_total 3")
	require.Contains(t, rec.Body.String(), "go_goroutines")
}

func TestConfigValidation(t *testing.T) {
	cfg := telemetry.Config{LogLevel: "loud", LogFormat: "xml", SampleRatio: 2}
	err := cfg.Validate("")
	require.Error(t, err)
	for _, want := range []string{"-log.level", "-log.format", "-otel.sample-ratio"} {
		require.ErrorContains(t, err, want)
	}
}

func TestTracesGoToTheOTLPEndpoint(t *testing.T) {
	got := make(chan string, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	cfg := telemetry.Config{LogLevel: "info", LogFormat: "json", SampleRatio: 1, OTLPEndpoint: collector.URL}
	tel, err := telemetry.New(context.Background(), cfg, "switchboard", "test", io.Discard)
	require.NoError(t, err)
	_, span := tel.Tracer.Tracer("t").Start(context.Background(), "webhook")
	require.True(t, span.IsRecording(), "spans are recorded when an exporter is configured")
	span.End()
	require.NoError(t, tel.Shutdown(context.Background())) // flushes
	require.Equal(t, "/v1/traces", <-got)
}
