// Package helm holds the tests of the Switchboard Helm chart in
// switchboard/: every scenario of switchboard/ci is rendered and linted with
// the Helm SDK, its objects are decoded strictly into Kubernetes API types and
// checked against the OpenAPI schema client-go embeds, the chart's invariants
// are checked, and the render is compared with testdata/golden
// (SB_UPDATE_GOLDEN=1 rewrites it). Nothing here needs a cluster or the
// network.
package helm
