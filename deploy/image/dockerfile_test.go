package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// instruction is one instruction of a Dockerfile, continuation lines joined.
type instruction struct {
	cmd, args string
}

func parseDockerfile(t *testing.T, path string) [][]instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	for _, l := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(l)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// TestDockerfileMatchesImage keeps deploy/Dockerfile and `make image` the
// same image: binary, build flags, user, entrypoint, environment, port.
func TestDockerfileMatchesImage(t *testing.T) {
	stages := parseDockerfile(t, filepath.Join("..", "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a builder and the final image", len(stages))
	}
	build, final := stages[0], stages[1]
	if !strings.Contains(build[0].args, "golang:") {
		t.Errorf("builder %q is not a golang image", build[0].args)
	}
	var buildCmd string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildCmd = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", "-ldflags='-s -w -buildid='", "./cmd/switchboard"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("builder's go build %q lacks %s", buildCmd, want)
		}
	}

	if final[0].args != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %q", final[0].args)
	}
	got := map[string][]string{}
	for _, in := range final {
		got[in.cmd] = append(got[in.cmd], in.args)
	}
	if !slices.Equal(got["USER"], []string{User}) {
		t.Errorf("USER %q, want %s", got["USER"], User)
	}
	if !slices.Equal(got["WORKDIR"], []string{HomeDir}) {
		t.Errorf("WORKDIR %q, want %s", got["WORKDIR"], HomeDir)
	}
	if !slices.Equal(got["EXPOSE"], []string{strings.TrimSuffix(Port, "/tcp")}) {
		t.Errorf("EXPOSE %q, want %s", got["EXPOSE"], Port)
	}
	if len(got["CMD"]) != 0 {
		t.Errorf("CMD %q: it would hide SB_TARGET", got["CMD"])
	}
	if len(got["ENTRYPOINT"]) != 1 {
		t.Fatalf("ENTRYPOINT %q", got["ENTRYPOINT"])
	}
	var ep []string
	if err := json.Unmarshal([]byte(got["ENTRYPOINT"][0]), &ep); err != nil || !slices.Equal(ep, Config(Options{}).Entrypoint) {
		t.Errorf("ENTRYPOINT %s (%v), want the exec form of %q", got["ENTRYPOINT"][0], err, Config(Options{}).Entrypoint)
	}
	env := strings.Join(got["ENV"], " ")
	for _, kv := range Config(Options{}).Env {
		if strings.HasPrefix(kv, "PATH=") {
			continue // distroless sets its own, with /usr/local/bin
		}
		if !strings.Contains(env, kv) {
			t.Errorf("ENV lacks %s", kv)
		}
	}
	copies := strings.Join(got["COPY"], "\n")
	if !strings.Contains(copies, BinaryPath) {
		t.Errorf("no COPY to %s", BinaryPath)
	}
	if !strings.Contains(copies, "--chown="+User+" /out/data "+DataDir) {
		t.Errorf("no COPY of a data directory owned by %s to %s:\n%s", User, DataDir, copies)
	}
}

// TestMakeImageFlags keeps `make image` building the binary as the
// Dockerfile does.
func TestMakeImageFlags(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatalf("no Makefile: %v", err)
	}
	_, recipe, ok := strings.Cut(string(b), "\nimage:")
	if !ok {
		t.Fatal("no image target in the Makefile")
	}
	if i := strings.Index(recipe, "\n\n"); i >= 0 {
		recipe = recipe[:i]
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-buildvcs=false", "-ldflags='-s -w -buildid='", "./cmd/switchboard", "cd deploy", "GOWORK=off", "./cmd/imagebuild"} {
		if !strings.Contains(recipe, want) {
			t.Errorf("make image lacks %s:\n%s", want, recipe)
		}
	}
}
