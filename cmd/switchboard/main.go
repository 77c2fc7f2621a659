// Command switchboard is the one binary of Switchboard. It runs any set of
// its components (-target=all for everything in one process, or a comma list
// such as -target=inbox,chat), and `switchboard admin ...` bootstraps
// tenants.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

func main() {
	// Switchboard allocates a little per message and keeps little live
	// memory: collecting half as often trades a few MiB for CPU. GOGC set in
	// the environment wins.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(200)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a component failed or a dependency is unreachable
	exitUsage  = 2 // bad flags or settings
)

// run is main without the process: arguments, environment and output are
// passed in, so tests drive it directly.
func run(ctx context.Context, args []string, env func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "admin" {
		return runAdmin(ctx, args[1:], env, stdout, stderr)
	}
	return serve(ctx, args, env, stderr)
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

func usageError(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "switchboard: %v\n", err)
	return exitUsage
}
