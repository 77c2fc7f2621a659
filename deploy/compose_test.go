package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
)

// The targets of -target, each a service of its own in compose.yaml.
var targets = []string{"inbox", "router", "scheduler", "chat", "email", "sms"}

// infra are the services every Switchboard container waits for.
var infra = []string{"postgres", "valkey", "kafka"}

// loadCompose loads compose.yaml as `docker compose -f deploy/compose.yaml`
// would, with env as the only environment (none of the machine's), and
// fails on any error or warning.
func loadCompose(t *testing.T, env ...string) *types.Project {
	t.Helper()
	var warnings bytes.Buffer
	logrus.SetOutput(&warnings)
	t.Cleanup(func() { logrus.SetOutput(os.Stderr) })

	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnv(env),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	if warnings.Len() > 0 {
		t.Errorf("loading compose.yaml warned:\n%s", warnings.String())
	}
	return p
}

func TestComposeMesh(t *testing.T) {
	p := loadCompose(t)
	if p.Name != "switchboard" {
		t.Errorf("project name %q", p.Name)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}

	// Kafka, PostgreSQL and Valkey, each with a healthcheck.
	for _, name := range infra {
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("no %s service", name)
		}
		if s.Image == "" {
			t.Errorf("%s: no image", name)
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
			t.Errorf("%s: no healthcheck", name)
		}
	}
	for name, mount := range map[string]string{"postgres": "/var/lib/postgresql/data", "kafka": "/var/lib/kafka/data"} {
		if !hasVolume(p.Services[name], name, mount) {
			t.Errorf("%s: named volume %s not mounted on %s", name, name, mount)
		}
	}
	if !strings.HasPrefix(p.Services["kafka"].Image, "apache/kafka:") {
		t.Errorf("kafka image %q", p.Services["kafka"].Image)
	}
	kenv := p.Services["kafka"].Environment
	if v := kenv["KAFKA_PROCESS_ROLES"]; v == nil || *v != "broker,controller" {
		t.Error("kafka is not a combined broker and controller")
	}
	if v := kenv["KAFKA_ADVERTISED_LISTENERS"]; v == nil || !strings.Contains(*v, "kafka:9092") {
		t.Error("kafka does not advertise kafka:9092")
	}

	// Every Switchboard container: the same image, buildable from the
	// repository, non-root with a read-only root.
	image := "ghcr.io/switchboard-oss/switchboard:latest"
	sb := map[string]types.ServiceConfig{}
	for name, s := range p.Services {
		if slices.Contains(infra, name) {
			continue
		}
		sb[name] = s
		if s.Image != image {
			t.Errorf("%s: image %q, want %q", name, s.Image, image)
		}
		if s.Build == nil || s.Build.Context != root || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: build %+v, want the repository root with deploy/Dockerfile", name, s.Build)
		} else if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if s.User != "65532:65532" || !s.ReadOnly || !slices.Contains(s.Tmpfs, "/tmp") {
			t.Errorf("%s: user %q, read-only %v, tmpfs %q; want 65532:65532, a read-only root and /tmp", name, s.User, s.ReadOnly, s.Tmpfs)
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: capabilities not dropped", name)
		}
		for _, k := range []string{"SB_DATABASE_URL", "SB_REDIS_URL", "SB_KAFKA_BROKERS"} {
			if v := s.Environment[k]; v == nil || *v == "" {
				t.Errorf("%s: %s not set", name, k)
			}
		}
		if v := s.Environment["SB_KAFKA_BROKERS"]; v != nil && *v != "kafka:9092" {
			t.Errorf("%s: SB_KAFKA_BROKERS %q", name, *v)
		}
		if v := s.Environment["SB_DATABASE_URL"]; v != nil && !strings.Contains(*v, "@postgres:5432/switchboard") {
			t.Errorf("%s: SB_DATABASE_URL %q does not name the postgres service", name, *v)
		}
	}

	// The one-shot topics service, after Kafka.
	topics, ok := sb["topics"]
	if !ok {
		t.Fatal("no topics service")
	}
	if !slices.Equal(topics.Command, []string{"admin", "create-topics", "-kafka.brokers", "kafka:9092"}) {
		t.Errorf("topics command %q", topics.Command)
	}
	if d, ok := topics.DependsOn["kafka"]; !ok || d.Condition != types.ServiceConditionHealthy {
		t.Errorf("topics does not wait for a healthy kafka: %+v", topics.DependsOn)
	}
	if topics.Restart != "no" {
		t.Errorf("topics restart %q, want no", topics.Restart)
	}

	// The one-shot keys service, which makes the keys file on the image's
	// data directory (writable by its user) unless it is there.
	keys, ok := sb["keys"]
	if !ok {
		t.Fatal("no keys service")
	}
	if !slices.Equal(keys.Command, []string{"admin", "secrets", "new-key", "-file", "/var/lib/switchboard/secrets.keys"}) {
		t.Errorf("keys command %q", keys.Command)
	}
	if keys.Restart != "no" || len(keys.DependsOn) != 0 {
		t.Errorf("keys restart %q, depends on %v; want no, and nothing", keys.Restart, keys.DependsOn)
	}
	if !hasVolume(keys, "keys", "/var/lib/switchboard") {
		t.Errorf("keys: volume keys not on /var/lib/switchboard: %+v", keys.Volumes)
	}

	// One service per target, each once, after the infrastructure and the
	// topics.
	seen := map[string]string{}
	for name, s := range sb {
		if name == "topics" || name == "keys" {
			continue
		}
		if len(s.Command) != 1 || !strings.HasPrefix(s.Command[0], "-target=") {
			t.Errorf("%s: command %q, want [-target=...]", name, s.Command)
			continue
		}
		target := strings.TrimPrefix(s.Command[0], "-target=")
		if !slices.Contains(targets, target) {
			t.Errorf("%s: unknown target %q", name, target)
		}
		if other, dup := seen[target]; dup {
			t.Errorf("target %s in %s and %s", target, other, name)
		}
		seen[target] = name
		if name != target {
			t.Errorf("service %s runs target %s", name, target)
		}
		for _, dep := range infra {
			if d, ok := s.DependsOn[dep]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: does not wait for a healthy %s", name, dep)
			}
		}
		for _, oneShot := range []string{"topics", "keys"} {
			if d, ok := s.DependsOn[oneShot]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s: does not wait for the %s", name, oneShot)
			}
		}
		if s.Restart != "unless-stopped" {
			t.Errorf("%s: restart %q", name, s.Restart)
		}
	}
	for _, target := range targets {
		if _, ok := seen[target]; !ok {
			t.Errorf("no service runs target %s", target)
		}
	}

	// The API and the webhooks, on distinct host ports.
	hostPorts := map[string]string{}
	for name, want := range map[string]string{"inbox": "8080", "chat": "8081", "sms": "8082"} {
		ports := sb[name].Ports
		if len(ports) != 1 || ports[0].Target != 8080 || ports[0].Published != want || ports[0].HostIP != "127.0.0.1" {
			t.Errorf("%s: ports %+v, want 127.0.0.1:%s to 8080", name, ports, want)
		}
		if len(ports) == 1 {
			if other, dup := hostPorts[ports[0].Published]; dup {
				t.Errorf("host port %s for %s and %s", ports[0].Published, other, name)
			}
			hostPorts[ports[0].Published] = name
		}
	}
	for _, name := range []string{"router", "scheduler", "email", "topics", "keys"} {
		if len(sb[name].Ports) != 0 {
			t.Errorf("%s publishes %+v", name, sb[name].Ports)
		}
	}

	// Attachments: one volume, shared by the services that keep them. The
	// keys: read-only, for the targets that seal or open secrets only.
	for name, s := range sb {
		keeps := name == "inbox" || name == "email" || name == "sms"
		seals := keeps || name == "chat"
		dir := s.Environment["SB_BLOB_DIR"]
		if keeps != (dir != nil) {
			t.Errorf("%s: SB_BLOB_DIR %v", name, dir)
		}
		want := 0
		if keeps {
			want++
			if !hasVolume(s, "blobs", "/var/lib/switchboard") || dir == nil || !strings.HasPrefix(*dir, "/var/lib/switchboard/") {
				t.Errorf("%s: blobs volume on /var/lib/switchboard and SB_BLOB_DIR %v under it", name, dir)
			}
		}
		file := s.Environment["SB_SECRETS_KEYS_FILE"]
		if seals != (file != nil) {
			t.Errorf("%s: SB_SECRETS_KEYS_FILE %v", name, file)
		}
		if seals {
			want++
			readOnly := false
			for _, v := range s.Volumes {
				readOnly = readOnly || v.Source == "keys" && v.ReadOnly && file != nil && *file == v.Target+"/secrets.keys"
			}
			if !readOnly {
				t.Errorf("%s: keys volume not mounted read-only where SB_SECRETS_KEYS_FILE %v points: %+v", name, file, s.Volumes)
			}
		}
		if name == "keys" {
			want++
		}
		if len(s.Volumes) != want {
			t.Errorf("%s mounts %+v", name, s.Volumes)
		}
	}
	if v := sb["sms"].Environment["SB_SMS_PUBLIC_BASE_URL"]; v == nil || *v == "" {
		t.Error("sms: SB_SMS_PUBLIC_BASE_URL not set; the sms target refuses to start without it")
	}
	for _, v := range []string{"postgres", "kafka", "blobs", "keys"} {
		if _, ok := p.Volumes[v]; !ok {
			t.Errorf("volume %s not declared", v)
		}
	}
}

func hasVolume(s types.ServiceConfig, source, target string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == source && v.Target == target {
			return true
		}
	}
	return false
}

// TestComposeSettingsExist checks every SB_ variable compose.yaml sets
// against the configuration reference generated from the flags.
func TestComposeSettingsExist(t *testing.T) {
	ref, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatalf("no configuration reference: %v", err)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile("`(SB_[A-Z0-9_]+)`").FindAllStringSubmatch(string(ref), -1) {
		known[m[1]] = true
	}
	p := loadCompose(t)
	for name, s := range p.Services {
		for k := range s.Environment {
			if strings.HasPrefix(k, "SB_") && !known[k] {
				t.Errorf("%s: %s is no setting of switchboard (docs/configuration.md)", name, k)
			}
		}
	}
}

// TestComposeEnvironment checks that the variables documented at the top
// of compose.yaml do what they say.
func TestComposeEnvironment(t *testing.T) {
	p := loadCompose(t,
		"SWITCHBOARD_IMAGE=registry.example.com/switchboard",
		"SWITCHBOARD_TAG=1.2.3",
		"SWITCHBOARD_BIND=0.0.0.0",
		"SWITCHBOARD_INBOX_PORT=9080",
		"SWITCHBOARD_SMS_PUBLIC_BASE_URL=https://switchboard.example.com",
		"POSTGRES_PASSWORD=s3cret",
	)
	for _, name := range append([]string{"topics", "keys"}, targets...) {
		if s := p.Services[name]; s.Image != "registry.example.com/switchboard:1.2.3" {
			t.Errorf("%s: image %q", name, s.Image)
		}
	}
	if ports := p.Services["inbox"].Ports; len(ports) != 1 || ports[0].Published != "9080" || ports[0].HostIP != "0.0.0.0" {
		t.Errorf("inbox ports %+v", ports)
	}
	if v := p.Services["sms"].Environment["SB_SMS_PUBLIC_BASE_URL"]; v == nil || *v != "https://switchboard.example.com" {
		t.Errorf("SB_SMS_PUBLIC_BASE_URL %v", v)
	}
	if v := p.Services["postgres"].Environment["POSTGRES_PASSWORD"]; v == nil || *v != "s3cret" {
		t.Errorf("POSTGRES_PASSWORD %v", v)
	}
	if v := p.Services["router"].Environment["SB_DATABASE_URL"]; v == nil || !strings.Contains(*v, ":s3cret@postgres:") {
		t.Errorf("SB_DATABASE_URL %v does not follow POSTGRES_PASSWORD", v)
	}
}
