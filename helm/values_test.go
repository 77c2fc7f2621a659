package helm_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// base is the smallest valid set of values (mode all).
func base(t *testing.T) map[string]any {
	t.Helper()
	return readValues(t, filepath.Join(chartDir, "ci", "all-minimal-values.yaml"))
}

// with returns base with the YAML overlay merged in, maps recursively.
func with(t *testing.T, overlay string) map[string]any {
	t.Helper()
	o := map[string]any{}
	if err := yaml.Unmarshal([]byte(overlay), &o); err != nil {
		t.Fatalf("overlay %q: %v", overlay, err)
	}
	return merge(base(t), o)
}

func merge(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// TestSchemaRefusesMisspeltValues: a value the schema does not know, or of
// the wrong type, stops the install with an error naming it.
func TestSchemaRefusesMisspeltValues(t *testing.T) {
	if _, err := render(base(t)); err != nil {
		t.Fatalf("the base values do not render: %v", err)
	}
	for _, tc := range []struct {
		name, overlay string
		mention       []string
	}{
		{"replicaCount at the top", "replicaCount: 2", []string{"replicaCount"}},
		{"replicaCount in a target", "inbox: {replicaCount: 2}", []string{"replicaCount", "inbox"}},
		{"mode misspelt", "mode: splt", []string{"/mode", "split"}},
		{"replicas not a number", `inbox: {replicas: "two"}`, []string{"/inbox/replicas", "integer"}},
		{"autoscaling misspelt", "all: {autoscalling: {enabled: true}}", []string{"autoscalling"}},
		{"image tag a number", "image: {tag: 1.2}", []string{"/image/tag", "string"}},
		{"brokers a string", "kafka: {brokers: kafka:9092}", []string{"/kafka/brokers", "array"}},
		{"broker without port", "kafka: {brokers: [kafka]}", []string{"/kafka/brokers/0"}},
		{"log level unknown", "config: {logLevel: verbose}", []string{"/config/logLevel"}},
		{"presence window not a duration", "config: {presenceWindow: 30}", []string{"/config/presenceWindow"}},
		{"blob store unknown", "blob: {store: nfs}", []string{"/blob/store"}},
		{"s3 endpoint with scheme", "blob: {s3: {endpoint: 'https://s3.amazonaws.com'}}", []string{"/blob/s3/endpoint"}},
		{"pdb percentage without %", `router: {pdb: {enabled: true, minAvailable: "50"}}`, []string{"/router/pdb/minAvailable"}},
		{"env entry misspelt", "extraEnv: [{name: A, vaule: b}]", []string{"vaule"}},
		{"resources misspelt", "all: {resources: {request: {cpu: 1}}}", []string{"request"}},
		{"ingress host instead of hosts", "ingress: {enabled: true, host: a.example.com}", []string{"host"}},
		{"annotation value a number", "podAnnotations: {a: 1}", []string{"/podAnnotations/a"}},
		{"network peer misspelt", "networkPolicy: {ingressFrom: [{namespaceSelectors: {}}]}", []string{"namespaceSelectors"}},
		{"toleration operator unknown", "tolerations: [{key: a, operator: Equals}]", []string{"/tolerations/0/operator"}},
		{"digest malformed", "image: {digest: latest}", []string{"/image/digest"}},
		{"active key not a key id", "secrets: {activeKey: 'a:b'}", []string{"/secrets/activeKey"}},
		{"SASL mechanism unknown", "kafka: {sasl: {mechanism: gssapi}}", []string{"/kafka/sasl/mechanism"}},
		{"TLS key misspelt", "kafka: {tls: {caFile: ca.pem}}", []string{"caFile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(with(t, tc.overlay))
			if err == nil {
				t.Fatalf("%s: rendered, want a schema error", tc.overlay)
			}
			msg := err.Error()
			if !strings.Contains(msg, "schema") {
				t.Errorf("%s: %v, want a schema error", tc.overlay, err)
			}
			for _, m := range tc.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("%s: error %q does not mention %q", tc.overlay, msg, m)
				}
			}
		})
	}
}

// TestTemplateChecks: combinations the schema cannot refuse fail with a
// message saying what to set.
func TestTemplateChecks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		vals   func(t *testing.T) map[string]any
		reason string
	}{
		{"no brokers", func(t *testing.T) map[string]any {
			v := base(t)
			v["kafka"] = map[string]any{"brokers": []any{}}
			return v
		}, "kafka.brokers is empty"},
		{"no database", func(t *testing.T) map[string]any { v := base(t); delete(v, "database"); return v }, "set database.url"},
		{"no redis", func(t *testing.T) map[string]any { v := base(t); delete(v, "redis"); return v }, "set redis.url"},
		{"no keys", func(t *testing.T) map[string]any { v := base(t); delete(v, "secrets"); return v }, "secrets.existingSecret is empty"},
		{"split sms without its public URL", func(t *testing.T) map[string]any { return with(t, "mode: split") }, "config.smsPublicBaseUrl"},
		{"split without any target", func(t *testing.T) map[string]any {
			return with(t, "mode: split\ninbox: {enabled: false}\nrouter: {enabled: false}\nscheduler: {enabled: false}\nchat: {enabled: false}\nemail: {enabled: false}\nsms: {enabled: false}")
		}, "every target is disabled"},
		{"ReadWriteOnce attachments in split mode", func(t *testing.T) map[string]any {
			return with(t, "mode: split\nsms: {enabled: false}\nblob: {persistence: {accessModes: [ReadWriteOnce]}}")
		}, "lacks ReadWriteMany"},
		{"ReadWriteOnce attachments with two replicas", func(t *testing.T) map[string]any {
			return with(t, "all: {replicas: 2}\nblob: {persistence: {accessModes: [ReadWriteOnce]}}")
		}, "lacks ReadWriteMany"},
		{"s3 without credentials", func(t *testing.T) map[string]any {
			return with(t, "blob: {store: s3, s3: {endpoint: minio:9000, bucket: b}}")
		}, "blob.s3.accessKey"},
		{"s3 without bucket", func(t *testing.T) map[string]any {
			return with(t, "blob: {store: s3, s3: {endpoint: minio:9000, accessKey: a, secretKey: s}}")
		}, "blob.s3.bucket"},
		{"grace period within the drain", func(t *testing.T) map[string]any { return with(t, "terminationGracePeriodSeconds: 30") }, "terminationGracePeriodSeconds 30"},
		{"Kafka TLS files without TLS", func(t *testing.T) map[string]any {
			return with(t, "kafka: {tls: {caSecret: kafka-ca}}")
		}, "set kafka.tls.enabled=true"},
		{"SASL without user", func(t *testing.T) map[string]any {
			return with(t, "kafka: {sasl: {mechanism: scram-sha-512, passwordSecret: kafka-user}}")
		}, "set kafka.sasl.username and kafka.sasl.passwordSecret"},
		{"SASL without password", func(t *testing.T) map[string]any {
			return with(t, "kafka: {sasl: {mechanism: plain, username: sb}}")
		}, "set kafka.sasl.username and kafka.sasl.passwordSecret"},
		{"SASL user without mechanism", func(t *testing.T) map[string]any {
			return with(t, "kafka: {sasl: {username: sb, passwordSecret: kafka-user}}")
		}, "without kafka.sasl.mechanism"},
		{"Redis TLS files with a redis:// URL", func(t *testing.T) map[string]any {
			return with(t, "redis: {url: 'redis://valkey:6379/0', tls: {caSecret: valkey-ca}}")
		}, "not a rediss:// URL"},
		{"autoscaling maximum below minimum", func(t *testing.T) map[string]any {
			return with(t, "all: {autoscaling: {enabled: true, minReplicas: 4, maxReplicas: 2}}\nblob: {store: s3, s3: {endpoint: minio:9000, bucket: b, accessKey: a, secretKey: s}}")
		}, "maxReplicas 2 is below minReplicas 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(tc.vals(t))
			if err == nil {
				t.Fatal("rendered, want a failure")
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("error %q does not say %q", err, tc.reason)
			}
		})
	}
}

// TestReadWriteOnceSingleReplica: one pod of mode all may keep attachments
// on a ReadWriteOnce volume, replaced rather than rolled.
func TestReadWriteOnceSingleReplica(t *testing.T) {
	objs := decodeAll(t, mustRender(t, with(t, "blob: {persistence: {accessModes: [ReadWriteOnce]}}")).all())
	if len(objs.deployments) != 1 || objs.deployments[0].Spec.Strategy.Type != "Recreate" {
		t.Errorf("want one Deployment with the Recreate strategy")
	}
}

// TestChecksumRollsPods: a change of the ConfigMap or the Secret changes the
// pods' annotations, so that the Deployments roll; other changes do not.
func TestChecksumRollsPods(t *testing.T) {
	annotations := func(overlay string) map[string]string {
		objs := decodeAll(t, mustRender(t, with(t, overlay)).all())
		return objs.deployments[0].Spec.Template.Annotations
	}
	orig := annotations("")
	for _, tc := range []struct {
		overlay        string
		config, secret bool
		why            string
	}{
		{"config: {logLevel: debug}", true, false, "a setting"},
		{"kafka: {brokers: ['other:9092']}", true, false, "the brokers"},
		{"database: {url: 'postgres://elsewhere/switchboard'}", false, true, "the database URL"},
		{"redis: {url: 'redis://elsewhere:6379/1'}", false, true, "the Redis URL"},
		{"all: {resources: {limits: {cpu: '3'}}}", false, false, "the resources"},
	} {
		a := annotations(tc.overlay)
		if changed := a["checksum/config"] != orig["checksum/config"]; changed != tc.config {
			t.Errorf("%s (%s): checksum/config changed %v, want %v", tc.why, tc.overlay, changed, tc.config)
		}
		if changed := a["checksum/secret"] != orig["checksum/secret"]; changed != tc.secret {
			t.Errorf("%s (%s): checksum/secret changed %v, want %v", tc.why, tc.overlay, changed, tc.secret)
		}
	}
}

// TestEnvOverrides: extraEnv and a target's env replace the chart's
// variables of the same name, in their place.
func TestEnvOverrides(t *testing.T) {
	objs := decodeAll(t, mustRender(t, with(t, `
extraEnv: [{name: GOMEMLIMIT, value: 900MiB}, {name: SB_X, value: a}]
all: {env: [{name: SB_X, value: b}, {name: SB_REDIS_URL, value: 'redis://r:6379/0'}]}`)).all())
	env := objs.deployments[0].Spec.Template.Spec.Containers[0].Env
	got := map[string]corev1.EnvVar{}
	var order []string
	for _, e := range env {
		got[e.Name] = e
		order = append(order, e.Name)
	}
	if got["GOMEMLIMIT"].Value != "900MiB" || got["GOMEMLIMIT"].ValueFrom != nil {
		t.Errorf("GOMEMLIMIT %+v, want 900MiB", got["GOMEMLIMIT"])
	}
	if got["SB_X"].Value != "b" || got["SB_REDIS_URL"].Value != "redis://r:6379/0" || got["SB_REDIS_URL"].ValueFrom != nil {
		t.Errorf("the target's env does not win: %+v", env)
	}
	if order[0] != "SB_DATABASE_URL" || order[1] != "SB_REDIS_URL" || order[len(order)-1] != "SB_X" {
		t.Errorf("order %v: overrides must keep the place of what they replace", order)
	}
}

// TestSchemaIsClosed: every object of values.schema.json refuses unknown
// keys (additionalProperties false, or typed for maps such as labels), and
// every property has a type.
func TestSchemaIsClosed(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, node map[string]any)
	walk = func(path string, node map[string]any) {
		if _, ok := node["$ref"]; ok {
			return
		}
		if node["type"] == nil {
			t.Errorf("%s: no type", path)
		}
		types, _ := node["type"].([]any)
		if node["type"] == "object" || slices.Contains(types, any("object")) {
			switch ap := node["additionalProperties"].(type) {
			case bool:
				if ap {
					t.Errorf("%s: additionalProperties true", path)
				}
			case map[string]any:
				if ap["type"] == nil {
					t.Errorf("%s: additionalProperties without a type", path)
				}
			default:
				t.Errorf("%s: additionalProperties not set", path)
			}
		}
		if node["type"] == "array" {
			items, ok := node["items"].(map[string]any)
			if !ok {
				t.Errorf("%s: array without items", path)
			} else {
				walk(path+"/items", items)
			}
		}
		props, _ := node["properties"].(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(props)) {
			walk(path+"/properties/"+k, props[k].(map[string]any))
		}
		if ap, ok := node["additionalProperties"].(map[string]any); ok {
			walk(path+"/additionalProperties", ap)
		}
	}
	walk("#", schema)
	defs, _ := schema["definitions"].(map[string]any)
	for _, k := range slices.Sorted(maps.Keys(defs)) {
		walk("#/definitions/"+k, defs[k].(map[string]any))
	}
}

// TestValuesDocumented: every key of the schema has its row in the README's
// values table (targets' keys as <target>.key).
func TestValuesDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(data, &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema["definitions"].(map[string]any)
	// Definitions documented as one key rather than key by key.
	opaque := map[string]bool{"resources": true, "envList": true, "quantity": true, "networkPolicyPeer": true,
		"toleration": true, "probe": true, "intOrPercent": true, "envFromSource": true}
	var paths []string
	var walk func(path string, node map[string]any)
	walk = func(path string, node map[string]any) {
		if ref, ok := node["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			if opaque[name] {
				paths = append(paths, path)
				return
			}
			node = defs[name].(map[string]any)
		}
		props, ok := node["properties"].(map[string]any)
		if !ok {
			paths = append(paths, path)
			return
		}
		for k, v := range props {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if path == "" && (k == "all" || slices.Contains(splitTargets, k)) {
				p = "<target>"
			}
			walk(p, v.(map[string]any))
		}
	}
	walk("", schema)
	slices.Sort(paths)
	for _, p := range slices.Compact(paths) {
		if !strings.Contains(string(readme), "| `"+p+"` |") {
			t.Errorf("README.md: no row | `%s` | in the values table", p)
		}
	}
}

// TestDashboards: the dashboards' ConfigMaps hold the JSON files of
// dashboards/ as they are, one per file, labelled for Grafana's sidecar.
func TestDashboards(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chartDir, "dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("%s/dashboards holds no dashboard", chartDir)
	}
	want := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(data, &d); err != nil {
			t.Errorf("%s: not JSON: %v", f, err)
		}
		if d["title"] == nil || d["panels"] == nil {
			t.Errorf("%s: not a Grafana dashboard (no title or panels)", f)
		}
		want[filepath.Base(f)] = strings.TrimRight(string(data), "\n")
	}
	objs := decodeAll(t, mustRender(t, with(t, "dashboards: {enabled: true, namespace: monitoring}")).all())
	got := map[string]string{}
	for _, cm := range objs.configMaps {
		if cm.Labels["grafana_dashboard"] != "1" {
			continue
		}
		if cm.Namespace != "monitoring" {
			t.Errorf("ConfigMap %s in namespace %s, want monitoring", cm.Name, cm.Namespace)
		}
		if len(cm.Data) != 1 {
			t.Errorf("ConfigMap %s: %d keys, want one dashboard", cm.Name, len(cm.Data))
		}
		maps.Copy(got, cm.Data)
	}
	if !maps.Equal(got, want) {
		t.Errorf("dashboards' ConfigMaps hold %v, want the files %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}

// TestLoaderFollowsSymlinks: Helm's chart loader reads a directory the chart
// links to, as dashboards/ may be (../../deploy/grafana/dashboards).
func TestLoaderFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	chart := filepath.Join(dir, "chart")
	shared := filepath.Join(dir, "shared", "dashboards")
	for _, d := range []string{filepath.Join(chart, "templates"), shared} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(chart, "Chart.yaml"), "apiVersion: v2\nname: linked\nversion: 0.1.0\n")
	write(filepath.Join(shared, "a.json"), `{"title": "A", "panels": []}`)
	if err := os.Symlink(filepath.Join("..", "shared", "dashboards"), filepath.Join(chart, "dashboards")); err != nil {
		t.Fatal(err)
	}
	c, err := loader.Load(chart)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range c.Files {
		names = append(names, f.Name)
	}
	if !slices.Contains(names, "dashboards/a.json") {
		t.Errorf("the loader did not follow the link: files %v", names)
	}
}

// TestKafkaSecurityFromSecrets: the TLS files and the SASL password of
// Kafka come from the operator's Secrets, mounted read-only in every
// Deployment and in the topic-creating Job, with the SB_ variables naming
// the files; no password is a plain variable.
func TestKafkaSecurityFromSecrets(t *testing.T) {
	objs := decodeAll(t, mustRender(t, with(t, `
mode: split
config: {smsPublicBaseUrl: 'https://sb.example.com'}
blob: {store: s3, s3: {endpoint: minio:9000, bucket: b, accessKey: a, secretKey: s}}
kafka:
  brokers: ['kafka:9093']
  tls: {enabled: true, caSecret: kafka-ca, certSecret: kafka-user, certKey: user.crt, keyKey: user.key, serverName: kafka.internal}
  sasl: {mechanism: scram-sha-512, username: switchboard, passwordSecret: kafka-user}
redis: {url: 'rediss://valkey:6380/0', tls: {caSecret: valkey-ca}}
database: {tls: {caSecret: pg-ca}}`)).all())
	type pod struct {
		name string
		spec corev1.PodSpec
	}
	var pods []pod
	for _, d := range objs.deployments {
		pods = append(pods, pod{"Deployment " + d.Name, d.Spec.Template.Spec})
	}
	for _, j := range objs.jobs {
		pods = append(pods, pod{"Job " + j.Name, j.Spec.Template.Spec})
	}
	if len(pods) != len(splitTargets)+1 {
		t.Fatalf("%d pods, want a Deployment per target and the Job", len(pods))
	}
	want := map[string]string{
		"SB_KAFKA_TLS_ENABLED":        "true",
		"SB_KAFKA_TLS_CA_FILE":        "/etc/switchboard/kafka/ca/ca.crt",
		"SB_KAFKA_TLS_CERT_FILE":      "/etc/switchboard/kafka/client/tls.crt",
		"SB_KAFKA_TLS_KEY_FILE":       "/etc/switchboard/kafka/client/tls.key",
		"SB_KAFKA_TLS_SERVER_NAME":    "kafka.internal",
		"SB_KAFKA_SASL_MECHANISM":     "scram-sha-512",
		"SB_KAFKA_SASL_USERNAME":      "switchboard",
		"SB_KAFKA_SASL_PASSWORD_FILE": "/etc/switchboard/kafka/sasl/password",
	}
	// The file each variable names, in the Secret and key it comes from.
	files := map[string][2]string{
		"/etc/switchboard/kafka/ca/ca.crt":      {"kafka-ca", "ca.crt"},
		"/etc/switchboard/kafka/client/tls.crt": {"kafka-user", "user.crt"},
		"/etc/switchboard/kafka/client/tls.key": {"kafka-user", "user.key"},
		"/etc/switchboard/kafka/sasl/password":  {"kafka-user", "password"},
	}
	for _, p := range pods {
		c := p.spec.Containers[0]
		env := map[string]corev1.EnvVar{}
		for _, e := range c.Env {
			env[e.Name] = e
		}
		for k, v := range want {
			if env[k].Value != v {
				t.Errorf("%s: %s=%q, want %q", p.name, k, env[k].Value, v)
			}
		}
		if _, ok := env["SB_KAFKA_SASL_PASSWORD"]; ok {
			t.Errorf("%s: the SASL password is a variable", p.name)
		}
		isJob := strings.HasPrefix(p.name, "Job ")
		if got := env["SB_REDIS_TLS_CA_FILE"].Value; (got == "/etc/switchboard/redis/ca/ca.crt") == isJob {
			t.Errorf("%s: SB_REDIS_TLS_CA_FILE=%q (the Job does not use Redis)", p.name, got)
		}
		volumes := map[string]*corev1.SecretVolumeSource{}
		for _, v := range p.spec.Volumes {
			volumes[v.Name] = v.Secret
		}
		for path, src := range files {
			found := false
			for _, m := range c.VolumeMounts {
				dir, file, _ := strings.Cut(strings.TrimPrefix(path, m.MountPath+"/"), "/")
				if !strings.HasPrefix(path, m.MountPath+"/") || file != "" {
					continue
				}
				sec := volumes[m.Name]
				if sec == nil || !m.ReadOnly {
					t.Errorf("%s: %s is not a read-only Secret", p.name, m.MountPath)
					continue
				}
				for _, it := range sec.Items {
					if sec.SecretName == src[0] && it.Key == src[1] && it.Path == dir {
						found = true
					}
				}
			}
			if !found {
				t.Errorf("%s: no read-only mount of key %s of Secret %s at %s", p.name, src[1], src[0], path)
			}
		}
		hasPG := false
		for _, m := range c.VolumeMounts {
			hasPG = hasPG || m.MountPath == "/etc/switchboard/database/ca"
		}
		if hasPG == isJob {
			t.Errorf("%s: PostgreSQL's CA mounted %v", p.name, hasPG)
		}
	}
}
