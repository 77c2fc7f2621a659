// Package deploy holds what runs Switchboard outside a Go toolchain: the
// Dockerfile, the Compose file of the split mesh (compose.yaml, checked by
// this package's tests), the engine-less image builder (package image and
// cmd/imagebuild, behind `make image`) and the Grafana dashboards.
package deploy
