// Package telemetry sets up the three signals of every Switchboard process:
// JSON logs through log/slog carrying the trace and span ids of the context,
// OpenTelemetry traces exported over OTLP/HTTP when an endpoint is configured,
// and OpenTelemetry metrics exposed in the Prometheus text format.
//
// Nothing here is global: New returns the providers, and every component
// receives them. The W3C trace context travels in HTTP and Kafka headers
// (see the events package) and in outbox rows, and every produce and
// consume has a messaging span (see the bus package), so one trace runs
// from a webhook through Kafka and the inbox's stored row to the event on
// an agent's stream.
package telemetry

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchboard-oss/switchboard/pkg/config"
)

// Config holds the logging and tracing settings.
type Config struct {
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is json or text.
	LogFormat string
	// OTLPEndpoint is the OTLP/HTTP collector traces go to; empty keeps
	// traces in the process (their ids still reach the logs).
	OTLPEndpoint string
	// SampleRatio is the fraction of new traces recorded, 0 to 1.
	SampleRatio float64
}

// RegisterFlags declares the flags under prefix.
func (c *Config) RegisterFlags(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.LogLevel, prefix+"log.level", "info", "Log level: debug, info, warn or error.")
	f.StringVar(&c.LogFormat, prefix+"log.format", "json", "Log format: json (one object per line, for collectors) or text (for people).")
	f.StringVar(&c.OTLPEndpoint, prefix+"otel.endpoint", "", "Base URL of the OTLP/HTTP collector traces are exported to (to its /v1/traces), such as http://otel-collector:4318. Empty: traces are not exported, but trace ids still appear in logs and travel with messages. Also read from OTEL_EXPORTER_OTLP_ENDPOINT.")
	f.Float64Var(&c.SampleRatio, prefix+"otel.sample-ratio", 1, "Fraction of new traces that are recorded, from 0 to 1; traces started upstream follow the upstream decision.")
}

// Validate checks the settings.
func (c *Config) Validate(prefix string) error {
	ck := config.NewChecker(prefix)
	_, err := parseLevel(c.LogLevel)
	ck.Check(err == nil, "log.level", fmt.Sprintf("unknown level %q", c.LogLevel), "set debug, info, warn or error")
	ck.Check(c.LogFormat == "json" || c.LogFormat == "text", "log.format", fmt.Sprintf("unknown format %q", c.LogFormat), "set json or text")
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		ck.Check(err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "", "otel.endpoint",
			fmt.Sprintf("%q is not an http(s) URL", c.OTLPEndpoint), "set the collector's base URL, such as http://otel-collector:4318")
	}
	ck.Check(c.SampleRatio >= 0 && c.SampleRatio <= 1, "otel.sample-ratio", fmt.Sprintf("%v is outside 0..1", c.SampleRatio), "set a value between 0 and 1")
	return ck.Err()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// Telemetry holds the providers of one process.
type Telemetry struct {
	// Logger writes structured logs with trace ids.
	Logger *slog.Logger
	// Tracer is the trace provider.
	Tracer trace.TracerProvider
	// Meter is the metric provider, exported through MetricsHandler.
	Meter metric.MeterProvider
	// Propagator carries trace context over HTTP headers.
	Propagator propagation.TextMapPropagator

	registry *prometheus.Registry
	shutdown []func(context.Context) error
}

// New builds the providers. service names the process in traces, such as
// switchboard; out receives the logs.
func New(ctx context.Context, cfg Config, service, version string, out io.Writer) (*Telemetry, error) {
	level, err := parseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(out, opts)
	} else {
		h = slog.NewJSONHandler(out, opts)
	}
	t := &Telemetry{
		Logger:     slog.New(traceHandler{h}),
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		registry:   prometheus.NewRegistry(),
	}

	// Schemaless: the SDK's default resource carries its own schema URL,
	// and two different ones cannot merge.
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(service), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}

	// Without an exporter nothing would read recorded spans: record none,
	// but still give every request and message a trace id, for the logs and
	// for the services downstream.
	sampler := sdktrace.NeverSample()
	if cfg.OTLPEndpoint != "" {
		sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))
	}
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sampler),
	}
	if cfg.OTLPEndpoint != "" {
		// Like OTEL_EXPORTER_OTLP_ENDPOINT, the setting is the collector's
		// base URL: the signal's path goes after it.
		u, err := url.Parse(cfg.OTLPEndpoint)
		if err != nil {
			return nil, fmt.Errorf("OTLP endpoint %q: %w", cfg.OTLPEndpoint, err)
		}
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u.String()))
		if err != nil {
			return nil, fmt.Errorf("OTLP trace exporter for %s: %w", cfg.OTLPEndpoint, err)
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	t.Tracer = tp
	t.shutdown = append(t.shutdown, tp.Shutdown)

	t.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(t.registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(exporter))
	t.Meter = mp
	t.shutdown = append(t.shutdown, mp.Shutdown)
	return t, nil
}

// Discard returns telemetry that logs nowhere and exports nothing, for tests
// that do not look at it.
func Discard() *Telemetry {
	t, err := New(context.Background(), Config{LogLevel: "error", LogFormat: "json", SampleRatio: 1}, "test", "test", io.Discard)
	if err != nil {
		// New only fails on invalid config or exporter set-up, neither of
		// which happens with these constant settings.
		panic(err)
	}
	return t
}

// MetricsHandler serves the metrics in the Prometheus text format.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// Gather returns the current metrics, for tests.
func (t *Telemetry) Gather() (map[string]float64, error) {
	families, err := t.registry.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := f.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out, nil
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range t.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Component returns the logger of a component: every line carries its name.
func (t *Telemetry) Component(name string) *slog.Logger {
	return t.Logger.With("component", name)
}

// requestIDKey is the context key of the HTTP request id.
type requestIDKey struct{}

// WithRequestID returns ctx carrying the id of the HTTP request being
// handled (see package httpx), which every line logged with it carries as
// request_id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// traceHandler adds trace_id and span_id to every record logged with a
// context that carries a span, and request_id to those logged while
// handling an HTTP request.
type traceHandler struct{ slog.Handler }

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name)}
}

// LatencyBuckets are the histogram bounds, in seconds, of every latency
// Switchboard measures: from a millisecond to a minute.
func LatencyBuckets() []float64 {
	return []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
}
