//go:build tools

// Package tools pins Traefik's command, which scripts/setup.sh builds with
// `go build github.com/traefik/traefik/v3/cmd/traefik` from this module, so
// that `go mod tidy` keeps its dependencies in go.mod/go.sum.
package tools

import (
	_ "github.com/traefik/traefik/v3/cmd/traefik"
)
