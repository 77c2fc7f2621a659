package helm_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "switchboard"
	releaseName = "sb"
	namespace   = "support"
	goldenDir   = "testdata/golden"
	// kubeVersion is the cluster the chart is rendered for: the release of
	// the k8s.io modules whose OpenAPI schema checks the objects.
	kubeVersion = "v1.37.0"
)

// The scenarios every run must find in switchboard/ci.
var requiredScenarios = []string{"all-minimal", "all-full", "split-minimal", "split-full", "s3"}

func TestMain(m *testing.M) {
	// The chart loader logs symbolic links it follows (dashboards/).
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

type scenario struct {
	name   string
	values map[string]any
}

// scenarios reads switchboard/ci/*-values.yaml.
func scenarios(t *testing.T) []scenario {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []scenario
	found := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), "-values.yaml")
		out = append(out, scenario{name: name, values: readValues(t, f)})
		found[name] = true
	}
	for _, name := range requiredScenarios {
		if !found[name] {
			t.Errorf("scenario %s: %s/ci/%s-values.yaml is missing", name, chartDir, name)
		}
	}
	return out
}

func readValues(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(data, &vals); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return vals
}

// rendered is a release rendered without a cluster.
type rendered struct {
	manifest string // the release's objects, in Helm's install order
	hooks    []*release.Hook
}

// all is every document, hooks last, as Helm prints them.
func (r rendered) all() string {
	var b strings.Builder
	b.WriteString(r.manifest)
	for _, h := range r.hooks {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", h.Path, strings.TrimSpace(h.Manifest))
	}
	return b.String()
}

// render installs the chart with vals as `helm install --dry-run=client`
// does: schema validation included, no cluster. The Prometheus Operator's
// API is declared present.
func render(vals map[string]any) (rendered, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return rendered{}, err
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = releaseName
	install.Namespace = namespace
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		return rendered{}, err
	}
	install.KubeVersion = kv
	install.APIVersions = common.VersionSet{"monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor"}
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return rendered{}, err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		return rendered{}, fmt.Errorf("release is a %T", rel)
	}
	hooks := append([]*release.Hook(nil), r.Hooks...)
	sort.SliceStable(hooks, func(i, j int) bool { return hooks[i].Path < hooks[j].Path })
	return rendered{manifest: r.Manifest, hooks: hooks}, nil
}

func mustRender(t *testing.T, vals map[string]any) rendered {
	t.Helper()
	r, err := render(vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios(t) {
		t.Run(sc.name, func(t *testing.T) {
			lint(t, sc.values)
			r := mustRender(t, sc.values)
			objs := decodeAll(t, r.all())
			checkInvariants(t, sc.values, objs)
			compareGolden(t, sc.name, r.all())
		})
	}
}

// lint runs `helm lint --strict`: any warning fails, information (the
// missing icon) does not.
func lint(t *testing.T, vals map[string]any) {
	t.Helper()
	l := action.NewLint()
	l.Strict = true
	l.Namespace = namespace
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	l.KubeVersion = kv
	res := l.Run([]string{chartDir}, vals)
	for _, err := range res.Errors {
		t.Errorf("lint: %v", err)
	}
	for _, m := range res.Messages {
		if m.Severity > support.InfoSev {
			t.Errorf("lint: %s", m)
		} else if !strings.Contains(m.Error(), "icon is recommended") {
			t.Errorf("lint, unexpected information: %s", m)
		}
	}
	if res.TotalChartsLinted != 1 {
		t.Errorf("lint: %d charts linted, want 1", res.TotalChartsLinted)
	}
}

var sourceRE = regexp.MustCompile(`(?m)^# Source: (\S+)`)

// golden is the render kept in testdata/golden: the dashboards' ConfigMaps
// are left out, so that editing a dashboard does not touch the chart's
// golden files (TestDashboards checks them).
func golden(all string) string {
	var b strings.Builder
	for _, doc := range splitDocs(all) {
		if m := sourceRE.FindStringSubmatch(doc); m != nil && m[1] == chartDir+"/templates/dashboards.yaml" {
			continue
		}
		b.WriteString("---\n")
		b.WriteString(strings.TrimSpace(doc))
		b.WriteString("\n")
	}
	return b.String()
}

// splitDocs cuts a multi-document YAML stream at its "---" lines.
func splitDocs(s string) []string {
	var docs []string
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(s, -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, d)
		}
	}
	return docs
}

func compareGolden(t *testing.T, name, all string) {
	t.Helper()
	got := golden(all)
	path := filepath.Join(goldenDir, name+".yaml")
	if os.Getenv("SB_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (SB_UPDATE_GOLDEN=1 go test ./... writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the render (SB_UPDATE_GOLDEN=1 go test ./... rewrites it; - golden, + render):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff is a unified-style diff of two texts, by lines, with two lines of
// context.
func lineDiff(want, got string) string {
	x, y := strings.Split(want, "\n"), strings.Split(got, "\n")
	// Longest common subsequence, by dynamic programming: the files are small.
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var lines []line
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			lines = append(lines, line{' ', x[i]})
			i++
			j++
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			lines = append(lines, line{'+', y[j]})
			j++
		default:
			lines = append(lines, line{'-', x[i]})
			i++
		}
	}
	const context = 2
	var b strings.Builder
	last := -1
	for k, l := range lines {
		near := false
		for d := max(0, k-context); d <= min(len(lines)-1, k+context); d++ {
			if lines[d].op != ' ' {
				near = true
				break
			}
		}
		if !near {
			continue
		}
		if last >= 0 && k > last+1 {
			b.WriteString("@@\n")
		}
		fmt.Fprintf(&b, "%c %s\n", l.op, l.text)
		last = k
	}
	return b.String()
}
