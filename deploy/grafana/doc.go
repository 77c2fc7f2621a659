// Package grafana holds the Grafana dashboards of Switchboard, in
// dashboards/*.json (Grafana's JSON model, to import or provision as they
// are). It has no code: its test checks that every dashboard is well formed
// and that every metric its queries read is one the switchboard binary
// exports, as the OpenTelemetry Prometheus exporter names it.
package grafana
