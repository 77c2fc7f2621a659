package grafana

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"
)

const (
	// dashboardDir holds the dashboards, relative to this package.
	dashboardDir = "dashboards"
	// repoRoot is the repository, relative to this package.
	repoRoot = "../.."
	// datasourceVar is how every panel names its data source.
	datasourceVar = "${datasource}"

	promExporterPath = "go.opentelemetry.io/otel/exporters/prometheus"
	sdkMetricPath    = "go.opentelemetry.io/otel/sdk/metric"
)

// skippedModules are workspace modules that are not part of the binary.
var skippedModules = map[string]bool{"bench": true, "deploy": true, "helm": true, "web": true}

// ---------------------------------------------------------------------------
// The dashboards.

type dashboard struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Tags          []string `json:"tags"`
	SchemaVersion int      `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *dsRef          `json:"datasource"`
}

type panel struct {
	ID          int    `json:"id"`
	Title       string `json:"title"`
	Type        string `json:"type"`
	Description string `json:"description"`
	Datasource  *dsRef `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []target `json:"targets"`
	// Panels are those of a collapsed row.
	Panels []panel `json:"panels"`
}

type target struct {
	RefID      string `json:"refId"`
	Expr       string `json:"expr"`
	Datasource *dsRef `json:"datasource"`
}

// queryless are the panel types that read no data.
var queryless = map[string]bool{"row": true, "text": true, "dashlist": true, "news": true, "annolist": true}

type dashboardFile struct {
	name string
	d    dashboard
}

func loadDashboards(t *testing.T) []dashboardFile {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dashboardDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no dashboard in %s", dashboardDir)
	}
	var out []dashboardFile
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Errorf("%s: not a Grafana dashboard: %v", p, err)
			continue
		}
		out = append(out, dashboardFile{name: filepath.Base(p), d: d})
	}
	return out
}

func usesDatasourceVar(ds *dsRef) bool {
	return ds != nil && (ds.UID == datasourceVar || ds.UID == "$datasource")
}

// checkDashboard returns what is wrong with one dashboard: its structure,
// and every metric its queries read that is not in exported.
func checkDashboard(name string, d dashboard, exported map[string]string) []string {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, name+": "+fmt.Sprintf(format, args...))
	}
	checkExpr := func(where, expr string, names []string, err error) {
		if err != nil {
			bad("%s: cannot read the query %q: %v", where, expr, err)
			return
		}
		for _, m := range names {
			if _, ok := exported[m]; !ok {
				bad("%s: unknown metric %q%s (the query is %q)", where, m, hint(m, exported), expr)
			}
		}
	}

	if d.UID == "" {
		bad("no uid")
	}
	if d.Title == "" {
		bad("no title")
	}
	if !slices.Contains(d.Tags, "switchboard") {
		bad("tags %q lack \"switchboard\"", d.Tags)
	}
	if d.SchemaVersion == 0 {
		bad("no schemaVersion")
	}
	hasDS := false
	for _, v := range d.Templating.List {
		q := variableQuery(v.Query)
		switch v.Type {
		case "datasource":
			if v.Name == "datasource" && q == "prometheus" {
				hasDS = true
			}
		case "query":
			where := fmt.Sprintf("variable %q", v.Name)
			if !usesDatasourceVar(v.Datasource) {
				bad("%s: its data source is not %s", where, datasourceVar)
			}
			names, err := variableMetricNames(q)
			checkExpr(where, q, names, err)
		}
	}
	if !hasDS {
		bad("no template variable \"datasource\" of type datasource with query \"prometheus\"")
	}

	ids := map[int]bool{}
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				bad("panel %q: id %d is used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Title == "" && p.Type != "row" {
				bad("a %s panel (id %d) has no title", p.Type, p.ID)
			}
			if queryless[p.Type] {
				continue
			}
			where := fmt.Sprintf("panel %q", p.Title)
			if p.Description == "" {
				bad("%s: no description", where)
			}
			if p.FieldConfig.Defaults.Unit == "" {
				bad("%s: no unit", where)
			}
			if !usesDatasourceVar(p.Datasource) {
				bad("%s: its data source is not %s", where, datasourceVar)
			}
			if len(p.Targets) == 0 {
				bad("%s: no query", where)
			}
			for _, tg := range p.Targets {
				w := fmt.Sprintf("%s, query %s", where, tg.RefID)
				if tg.Datasource != nil && !usesDatasourceVar(tg.Datasource) {
					bad("%s: its data source is not %s", w, datasourceVar)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					bad("%s: no expr", w)
					continue
				}
				names, err := metricNames(tg.Expr)
				checkExpr(w, tg.Expr, names, err)
			}
		}
	}
	walk(d.Panels)
	return problems
}

// hint suggests the exported name an unknown one was probably meant as.
func hint(m string, exported map[string]string) string {
	for _, s := range []string{"_total", "_bucket", "_seconds_bucket", "_seconds_total"} {
		if _, ok := exported[m+s]; ok {
			return fmt.Sprintf(" (did you mean %s?)", m+s)
		}
	}
	return " (not exported by the switchboard binary)"
}

// variableQuery is the query of a template variable, a string or an object
// with a query field.
func variableQuery(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.Query
}

// variableMetricNames returns the metrics a Prometheus template variable's
// query reads: label_values(selector, label), label_values(label),
// label_names(selector) or query_result(expr).
func variableMetricNames(q string) ([]string, error) {
	q = strings.TrimSpace(q)
	for _, fn := range []string{"label_values", "label_names", "query_result"} {
		if !strings.HasPrefix(q, fn+"(") || !strings.HasSuffix(q, ")") {
			continue
		}
		args := splitTopLevel(q[len(fn)+1 : len(q)-1])
		switch {
		case fn == "label_values" && len(args) == 2:
			return metricNames(args[0])
		case fn == "label_values" && len(args) == 1, fn == "label_names" && strings.TrimSpace(args[0]) == "":
			return nil, nil
		case len(args) == 1:
			return metricNames(args[0])
		}
		return nil, fmt.Errorf("%s takes %d arguments here", fn, len(args))
	}
	return nil, errors.New("not a label_values, label_names or query_result query")
}

// splitTopLevel splits s at the commas outside brackets and strings.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'', '`':
			if j, err := skipString(s, i); err == nil {
				i = j - 1
			}
		case '(', '{', '[':
			depth++
		case ')', '}', ']':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

// ---------------------------------------------------------------------------
// A PromQL tokenizer that finds the metric names of an expression.

var promqlFunctions = set(
	"abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
	"avg_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh",
	"count_over_time", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "deg",
	"delta", "deriv", "double_exponential_smoothing", "exp", "floor", "histogram_avg",
	"histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
	"histogram_stdvar", "histogram_sum", "holt_winters", "hour", "idelta", "increase", "info",
	"irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
	"mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi",
	"predict_linear", "present_over_time", "quantile_over_time", "rad", "rate", "resets",
	"round", "scalar", "sgn", "sin", "sinh", "sort", "sort_by_label", "sort_by_label_desc",
	"sort_desc", "sqrt", "stddev_over_time", "stdvar_over_time", "sum_over_time", "tan", "tanh",
	"time", "timestamp", "vector", "year",
	// Experimental, behind --enable-feature=promql-experimental-functions.
	"first_over_time", "histogram_quantiles", "integral", "max_of", "min_of", "range", "step",
	"start_timestamp", "ts_of_first_over_time", "ts_of_last_over_time", "ts_of_max_over_time",
	"ts_of_min_over_time",
	// The @ modifier's.
	"start", "end",
)

// promqlAggregations are case-insensitive, like the keywords.
var promqlAggregations = set(
	"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
	"bottomk", "topk", "quantile", "limitk", "limit_ratio",
)

var promqlKeywords = set("and", "or", "unless", "bool", "offset", "atan2", "inf", "nan")

// promqlLabelLists are followed by a list of label names.
var promqlLabelLists = set("by", "without", "on", "ignoring", "group_left", "group_right")

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// metricNames returns the metric names expr reads, in order, as written
// (histograms with their _bucket, _sum or _count suffix). Label names,
// strings, durations, Grafana variables, functions and keywords are not
// metric names. An identifier called like a function that PromQL does not
// know is an error, and so are unbalanced brackets.
func metricNames(expr string) ([]string, error) {
	var names []string
	depth := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			j, err := skipGroup(expr, i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			j, err := skipGroup(expr, i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '}' || c == ']':
			return nil, fmt.Errorf("unbalanced %q at offset %d", c, i)
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced ')' at offset %d", i)
			}
			i++
		case c == '$':
			i = skipVariable(expr, i)
		case isDigit(c) || (c == '.' && i+1 < len(expr) && isDigit(expr[i+1])):
			i = skipNumber(expr, i)
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			word, lower := expr[i:j], strings.ToLower(expr[i:j])
			i = j
			next := i
			for next < len(expr) && (expr[next] == ' ' || expr[next] == '\t' || expr[next] == '\n' || expr[next] == '\r') {
				next++
			}
			call := next < len(expr) && expr[next] == '('
			switch {
			case promqlLabelLists[lower]:
				if call {
					k, err := skipGroup(expr, next, '(', ')')
					if err != nil {
						return nil, err
					}
					i = k
				} else if lower != "group_left" && lower != "group_right" {
					return nil, fmt.Errorf("%q without its label list", word)
				}
			case promqlKeywords[lower], promqlAggregations[lower], promqlFunctions[word]:
			case call:
				return nil, fmt.Errorf("unknown function %q", word)
			default:
				names = append(names, word)
			}
		default: // operators, commas, @
			i++
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced '('")
	}
	return names, nil
}

// skipString returns the offset after the string literal at s[i].
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at offset %d", i)
}

// skipGroup returns the offset after the group s[i] opens, which may
// contain strings and nested groups of the same kind.
func skipGroup(s string, i int, open, closing byte) (int, error) {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '"', '\'', '`':
			k, err := skipString(s, j)
			if err != nil {
				return 0, err
			}
			j = k - 1
		case open:
			depth++
		case closing:
			if depth--; depth == 0 {
				return j + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced %q at offset %d", open, i)
}

// skipVariable returns the offset after the Grafana variable at s[i]:
// $name or ${name...}.
func skipVariable(s string, i int) int {
	if i+1 < len(s) && s[i+1] == '{' {
		if j := strings.IndexByte(s[i:], '}'); j >= 0 {
			return i + j + 1
		}
		return len(s)
	}
	j := i + 1
	for j < len(s) && isIdentChar(s[j]) {
		j++
	}
	return j
}

// skipNumber returns the offset after the number or duration at s[i]
// (1.5, 1e-9, 0x1f, 5m, 1h30m).
func skipNumber(s string, i int) int {
	j := i
	for j < len(s) {
		c := s[j]
		switch {
		case isDigit(c) || c == '.' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
			j++
		case (c == '+' || c == '-') && (s[j-1] == 'e' || s[j-1] == 'E') && !strings.ContainsAny(s[i:j], "xX") &&
			j+1 < len(s) && isDigit(s[j+1]):
			j++
		default:
			return j
		}
	}
	return j
}

// ---------------------------------------------------------------------------
// The metrics the binary exports, found in its sources.

// instrumentKind is how the exporter names an instrument's metric.
type instrumentKind int

const (
	kindCounter       instrumentKind = iota // monotonic: _total
	kindUpDownCounter                       // non-monotonic sum: a gauge, no suffix
	kindGauge                               // a gauge: _ratio for unit "1"
	kindHistogram                           // _bucket, _sum, _count
)

// instrumentMethods are the OpenTelemetry metric.Meter methods.
var instrumentMethods = map[string]instrumentKind{
	"Int64Counter":                   kindCounter,
	"Float64Counter":                 kindCounter,
	"Int64ObservableCounter":         kindCounter,
	"Float64ObservableCounter":       kindCounter,
	"Int64UpDownCounter":             kindUpDownCounter,
	"Float64UpDownCounter":           kindUpDownCounter,
	"Int64ObservableUpDownCounter":   kindUpDownCounter,
	"Float64ObservableUpDownCounter": kindUpDownCounter,
	"Int64Gauge":                     kindGauge,
	"Float64Gauge":                   kindGauge,
	"Int64ObservableGauge":           kindGauge,
	"Float64ObservableGauge":         kindGauge,
	"Int64Histogram":                 kindHistogram,
	"Float64Histogram":               kindHistogram,
}

// unitMap and perUnitMap are the exporter's unit names
// (github.com/prometheus/otlptranslator, which it uses).
var unitMap = map[string]string{
	"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
	"us": "microseconds", "ns": "nanoseconds",
	"By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tibibytes",
	"KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
	"m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams",
	"Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent",
}

var perUnitMap = map[string]string{
	"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year",
}

func isMetricChar(r rune) bool {
	return ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9') || r == ':'
}

// cleanUnit makes a unit suffix a valid name part, as the exporter does.
func cleanUnit(u string) string {
	u = strings.Map(func(r rune) rune {
		if isMetricChar(r) {
			return r
		}
		return '_'
	}, u)
	for strings.Contains(u, "__") {
		u = strings.ReplaceAll(u, "__", "_")
	}
	return strings.TrimPrefix(u, "_")
}

// promName is the name the OpenTelemetry Prometheus exporter gives an
// instrument (its default strategy, UnderscoreEscapingWithSuffixes): the name
// split into words at every character other than a letter, a digit or ':',
// the unit's words unless already there (s: seconds, By: bytes, {x}: none,
// x/s: x_per_second), _total for counters (moved to the end), _ratio for
// gauges of unit "1", joined with underscores.
func promName(name, unit string, kind instrumentKind) (string, error) {
	words := strings.FieldsFunc(name, func(r rune) bool { return !isMetricChar(r) })

	var main, per string
	parts := strings.SplitN(unit, "/", 2)
	if m := strings.TrimSpace(parts[0]); m != "" && !strings.ContainsAny(m, "{}") {
		main = m
		if u, ok := unitMap[m]; ok {
			main = u
		}
	}
	if len(parts) > 1 && parts[1] != "" {
		if p := strings.TrimSpace(parts[1]); p != "" && !strings.ContainsAny(p, "{}") {
			per = p
			if u, ok := perUnitMap[p]; ok {
				per = u
			}
		}
		if per != "" {
			per = "per_" + per
		}
	}
	main, per = cleanUnit(main), cleanUnit(per)
	if slices.Contains(words, main) {
		main = ""
	}
	if per == "per_" {
		per = ""
	} else {
		per = strings.TrimSuffix(per, "_")
		if slices.Contains(words, per) {
			per = ""
		}
	}
	if per != "" {
		main = strings.TrimSuffix(main, "_")
	}
	if main != "" {
		words = append(words, main)
	}
	if per != "" {
		words = append(words, per)
	}
	if kind == kindCounter {
		words = append(slices.DeleteFunc(words, func(w string) bool { return w == "total" }), "total")
	}
	if unit == "1" && kind == kindGauge {
		words = append(slices.DeleteFunc(words, func(w string) bool { return w == "ratio" }), "ratio")
	}
	n := strings.Join(words, "_")
	if n != "" && unicode.IsDigit(rune(n[0])) {
		n = "_" + n
	}
	if strings.Trim(n, "_") == "" {
		return "", fmt.Errorf("%q gives no valid Prometheus name", name)
	}
	return n, nil
}

// seriesNames are the names of the series an instrument's metric exposes.
func seriesNames(prom string, kind instrumentKind) []string {
	if kind == kindHistogram {
		return []string{prom + "_bucket", prom + "_sum", prom + "_count"}
	}
	return []string{prom}
}

// source is one parsed Go file of the binary.
type source struct {
	file    *ast.File
	pkgPath string
	// imports maps the names a file uses for its imports to their paths.
	imports map[string]string
}

type constant struct {
	expr ast.Expr
	src  *source
}

type scanner struct {
	fset    *token.FileSet
	sources []*source
	// consts maps import paths to their package-level constants.
	consts map[string]map[string]constant
	// pkgNames maps the workspace's import paths to their package names.
	pkgNames map[string]string

	exported    map[string]string // series name → where it is defined
	instruments int
	exporters   int
	targetInfo  bool
	problems    []string
}

// workspaceModules returns the directories of go.work's use directives.
func workspaceModules(root string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		return nil, err
	}
	var dirs []string
	inUse := false
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case inUse && f[0] == ")":
			inUse = false
		case inUse:
			dirs = append(dirs, f[0])
		case f[0] == "use" && len(f) >= 2 && f[1] == "(":
			inUse = true
		case f[0] == "use" && len(f) >= 2:
			dirs = append(dirs, f[1])
		}
	}
	if len(dirs) == 0 {
		return nil, errors.New("go.work uses no module")
	}
	return dirs, nil
}

var (
	moduleLine   = regexp.MustCompile(`(?m)^module\s+(\S+)`)
	majorVersion = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)*$`)
)

// scanRepo parses the non-test Go files of the workspace's modules but those
// in skippedModules, and collects the instruments they create.
func scanRepo(root string) (*scanner, error) {
	s := &scanner{fset: token.NewFileSet(), consts: map[string]map[string]constant{},
		pkgNames: map[string]string{}, exported: map[string]string{}, targetInfo: true}
	mods, err := workspaceModules(root)
	if err != nil {
		return nil, err
	}
	for _, m := range mods {
		rel := filepath.ToSlash(filepath.Clean(m))
		if skippedModules[strings.Split(rel, "/")[0]] {
			continue
		}
		if err := s.parseModule(filepath.Join(root, m)); err != nil {
			return nil, err
		}
	}
	for _, src := range s.sources {
		s.inspect(src)
	}
	if s.exporters == 0 {
		s.problems = append(s.problems, "no call of "+promExporterPath+".New: the naming rules this test applies are that exporter's")
	}
	if s.targetInfo {
		s.exported["target_info"] = "added by the exporter"
	}
	return s, nil
}

func (s *scanner) parseModule(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	mm := moduleLine.FindSubmatch(b)
	if mm == nil {
		return fmt.Errorf("%s/go.mod names no module", dir)
	}
	modPath := string(mm[1])
	return filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			name := e.Name()
			if p != dir && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" ||
				name == "node_modules" || name == "vendor") {
				return filepath.SkipDir
			}
			if p != dir {
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		if ok, err := build.Default.MatchFile(filepath.Dir(p), name); err != nil || !ok {
			return err
		}
		f, err := parser.ParseFile(s.fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(p))
		pkgPath := path.Join(modPath, filepath.ToSlash(rel))
		if f.Name.Name == "main" {
			pkgPath += "#main" // not importable: keep its constants apart
		}
		s.pkgNames[pkgPath] = f.Name.Name
		src := &source{file: f, pkgPath: pkgPath}
		s.sources = append(s.sources, src)
		if s.consts[pkgPath] == nil {
			s.consts[pkgPath] = map[string]constant{}
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						s.consts[pkgPath][n.Name] = constant{expr: vs.Values[i], src: src}
					}
				}
			}
		}
		return nil
	})
}

// importName is the name a file refers to an import by when it does not
// rename it.
func (s *scanner) importName(p string) string {
	if n, ok := s.pkgNames[p]; ok {
		return n
	}
	parts := strings.Split(p, "/")
	last := parts[len(parts)-1]
	if len(parts) > 1 && majorVersion.MatchString(last) {
		last = parts[len(parts)-2]
	}
	if i := strings.Index(last, ".v"); i > 0 {
		last = last[:i]
	}
	return strings.ReplaceAll(last, "-", "_")
}

// str resolves a constant string expression: literals, concatenations and
// package-level constants of the workspace.
func (s *scanner) str(e ast.Expr, src *source, depth int) (string, bool) {
	if depth > 20 {
		return "", false
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		v, err := strconv.Unquote(e.Value)
		return v, err == nil
	case *ast.ParenExpr:
		return s.str(e.X, src, depth+1)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok1 := s.str(e.X, src, depth+1)
		b, ok2 := s.str(e.Y, src, depth+1)
		return a + b, ok1 && ok2
	case *ast.Ident:
		if c, ok := s.consts[src.pkgPath][e.Name]; ok {
			return s.str(c.expr, c.src, depth+1)
		}
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			if c, ok := s.consts[src.imports[x.Name]][e.Sel.Name]; ok {
				return s.str(c.expr, c.src, depth+1)
			}
		}
	}
	return "", false
}

// pkgOf returns the import path of the package a selector's X names.
func pkgOf(src *source, sel *ast.SelectorExpr) string {
	if x, ok := sel.X.(*ast.Ident); ok {
		return src.imports[x.Name]
	}
	return ""
}

func (s *scanner) inspect(src *source) {
	src.imports = map[string]string{}
	for _, im := range src.file.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		name := s.importName(p)
		if im.Name != nil {
			name = im.Name.Name
		}
		src.imports[name] = p
	}
	ast.Inspect(src.file, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		pos := s.fset.Position(call.Pos())
		where := fmt.Sprintf("%s:%d", relToRoot(pos.Filename), pos.Line)
		switch pkg := pkgOf(src, sel); {
		case pkg == promExporterPath && sel.Sel.Name == "New":
			s.exporters++
			s.exporterOptions(where, call, src)
		case pkg == sdkMetricPath && (sel.Sel.Name == "NewView" || sel.Sel.Name == "WithView"):
			s.problems = append(s.problems, where+": a metric view can rename instruments or change their aggregation; teach this test about it")
		}
		if kind, ok := instrumentMethods[sel.Sel.Name]; ok {
			s.instrument(where, sel.Sel.Name, kind, call, src)
		}
		return true
	})
}

// exporterOptions checks that the exporter names metrics the way promName
// does.
func (s *scanner) exporterOptions(where string, call *ast.CallExpr, src *source) {
	if call.Ellipsis.IsValid() {
		s.problems = append(s.problems, where+": the Prometheus exporter's options are a slice this test cannot read")
		return
	}
	for _, a := range call.Args {
		oc, ok := a.(*ast.CallExpr)
		var sel *ast.SelectorExpr
		if ok {
			sel, ok = oc.Fun.(*ast.SelectorExpr)
		}
		if !ok || pkgOf(src, sel) != promExporterPath {
			s.problems = append(s.problems, where+": a Prometheus exporter option this test cannot read")
			continue
		}
		switch sel.Sel.Name {
		case "WithRegisterer", "WithoutScopeInfo", "WithProducer", "WithResourceAsConstantLabels":
		case "WithoutTargetInfo":
			s.targetInfo = false
		default: // WithNamespace, WithoutUnits, WithoutCounterSuffixes, WithTranslationStrategy, WithAggregationSelector...
			s.problems = append(s.problems, fmt.Sprintf("%s: the Prometheus exporter option %s changes metric names or types; teach this test about it", where, sel.Sel.Name))
		}
	}
}

func (s *scanner) instrument(where, method string, kind instrumentKind, call *ast.CallExpr, src *source) {
	fail := func(format string, args ...any) {
		s.problems = append(s.problems, fmt.Sprintf("%s: %s: ", where, method)+fmt.Sprintf(format, args...))
	}
	if len(call.Args) == 0 {
		fail("no name")
		return
	}
	name, ok := s.str(call.Args[0], src, 0)
	if !ok {
		fail("the name is not a constant string this test can resolve")
		return
	}
	if call.Ellipsis.IsValid() {
		fail("the options of %q are a slice this test cannot read (its unit is unknown)", name)
		return
	}
	unit := ""
	for _, a := range call.Args[1:] {
		oc, ok := a.(*ast.CallExpr)
		var sel *ast.SelectorExpr
		if ok {
			sel, ok = oc.Fun.(*ast.SelectorExpr)
		}
		if !ok || !strings.HasPrefix(sel.Sel.Name, "With") {
			fail("an option of %q is not a metric.With... call (its unit could hide there)", name)
			return
		}
		if sel.Sel.Name == "WithUnit" {
			if len(oc.Args) != 1 {
				fail("WithUnit of %q takes one argument", name)
				return
			}
			if unit, ok = s.str(oc.Args[0], src, 0); !ok {
				fail("the unit of %q is not a constant string this test can resolve", name)
				return
			}
		}
	}
	prom, err := promName(name, unit, kind)
	if err != nil {
		fail("%v", err)
		return
	}
	s.instruments++
	for _, n := range seriesNames(prom, kind) {
		s.exported[n] = fmt.Sprintf("%s (%q, unit %q)", where, name, unit)
	}
}

func relToRoot(p string) string {
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(root, p); err == nil {
		return filepath.ToSlash(r)
	}
	return p
}

var (
	scanOnce   sync.Once
	scanResult *scanner
	scanErr    error
)

func scanned(t *testing.T) *scanner {
	t.Helper()
	scanOnce.Do(func() { scanResult, scanErr = scanRepo(repoRoot) })
	if scanErr != nil {
		t.Fatalf("scanning the sources: %v", scanErr)
	}
	return scanResult
}

// ---------------------------------------------------------------------------
// The tests.

// TestDashboards checks every dashboard, and that every metric it reads is
// one the binary exports.
func TestDashboards(t *testing.T) {
	s := scanned(t)
	uids, titles := map[string]string{}, map[string]string{}
	read := 0
	for _, f := range loadDashboards(t) {
		if other, ok := uids[f.d.UID]; ok && f.d.UID != "" {
			t.Errorf("%s: uid %q is also %s's", f.name, f.d.UID, other)
		}
		uids[f.d.UID] = f.name
		if other, ok := titles[f.d.Title]; ok && f.d.Title != "" {
			t.Errorf("%s: title %q is also %s's", f.name, f.d.Title, other)
		}
		titles[f.d.Title] = f.name
		for _, p := range checkDashboard(f.name, f.d, s.exported) {
			t.Error(p)
		}
		read++
	}
	t.Logf("%d dashboards checked against %d instruments (%d series names)", read, s.instruments, len(s.exported))
}

// TestInstrumentsResolve fails on any instrument whose exported name the
// scan cannot work out: the check must stay exact.
func TestInstrumentsResolve(t *testing.T) {
	s := scanned(t)
	for _, p := range s.problems {
		t.Error(p)
	}
	// The scan finds the instruments at all: names seen on a running
	// binary's /metrics.
	for _, n := range []string{
		"http_server_request_duration_seconds_bucket",
		"messaging_client_consumed_messages_total",
		"messaging_batch_message_count_count",
		"switchboard_bus_dead_lettered_total",
		"switchboard_bus_lag",
		"switchboard_email_imap_backlog",
		"switchboard_outbox_delay_seconds_sum",
		"target_info",
	} {
		if _, ok := s.exported[n]; !ok {
			t.Errorf("the scan missed %s", n)
		}
	}
	if t.Failed() {
		var names []string
		for n := range s.exported {
			names = append(names, n)
		}
		sort.Strings(names)
		t.Logf("found: %s", strings.Join(names, " "))
	}
}

// TestUnknownMetricIsReported proves the check catches a metric the binary
// does not export, naming the dashboard, the panel and the metric.
func TestUnknownMetricIsReported(t *testing.T) {
	s := scanned(t)
	const synthetic = `{
	  "uid": "synthetic", "title": "Synthetic", "tags": ["switchboard"], "schemaVersion": 39,
	  "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
	  "panels": [
	    {"id": 1, "type": "timeseries", "title": "Known", "description": "d",
	     "datasource": {"type": "prometheus", "uid": "${datasource}"}, "fieldConfig": {"defaults": {"unit": "ops"}},
	     "targets": [{"refId": "A", "expr": "sum(rate(switchboard_bus_dead_lettered_total[$__rate_interval]))"}]},
	    {"id": 2, "type": "timeseries", "title": "Made up", "description": "d",
	     "datasource": {"type": "prometheus", "uid": "${datasource}"}, "fieldConfig": {"defaults": {"unit": "ops"}},
	     "targets": [{"refId": "A", "expr": "sum by (reason) (rate(switchboard_made_up_total{job=~\"$job\"}[5m])) / sum(rate(switchboard_bus_dead_lettered[5m]))"}]}
	  ]}`
	var d dashboard
	if err := json.Unmarshal([]byte(synthetic), &d); err != nil {
		t.Fatal(err)
	}
	problems := checkDashboard("synthetic.json", d, s.exported)
	if len(problems) != 2 {
		t.Fatalf("want 2 problems, got %d: %q", len(problems), problems)
	}
	for i, want := range []string{`"switchboard_made_up_total"`, `"switchboard_bus_dead_lettered" (did you mean switchboard_bus_dead_lettered_total?)`} {
		p := problems[i]
		if !strings.HasPrefix(p, "synthetic.json: ") || !strings.Contains(p, `panel "Made up"`) || !strings.Contains(p, want) {
			t.Errorf("problem %q does not name the dashboard, the panel and %s", p, want)
		}
	}
}

// TestScanIsExact proves the scan refuses what it cannot name exactly, on a
// synthetic workspace.
func TestScanIsExact(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.work":        "go 1.26.0\n\nuse (\n\t./a // the module\n\t./bench\n)\n",
		"a/go.mod":       "module example.com/a\n",
		"a/names/n.go":   "package names\n\nconst Prefix = \"ex.\"\n",
		"a/a_test.go":    "package a\n\nfunc g(m M) { m.Int64Counter(\"from.a.test\") }\n",
		"bench/go.mod":   "module example.com/bench\n",
		"bench/bench.go": "package bench\n\nfunc g(m M) { m.Int64Counter(\"from.bench\") }\n",
		"a/a.go": `package a

import (
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"

	"example.com/a/names"
)

const unit = "By"

func f(m metric.Meter, name string, opts []metric.Int64CounterOption) {
	m.Int64Counter(names.Prefix+"sent", metric.WithUnit(unit), metric.WithDescription("d"))
	m.Float64ObservableGauge("ex.load", metric.WithUnit("1"))
	m.Int64Counter(name)
	m.Int64Counter("ex.opts", opts...)
	otelprom.New(otelprom.WithRegisterer(nil), otelprom.WithNamespace("x"))
}
`,
	}
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := scanRepo(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for n := range s.exported {
		got = append(got, n)
	}
	sort.Strings(got)
	if want := []string{"ex_load_ratio", "ex_sent_bytes_total", "target_info"}; !slices.Equal(got, want) {
		t.Errorf("exported %q, want %q", got, want)
	}
	if len(s.problems) != 3 ||
		!strings.Contains(s.problems[0], "the name is not a constant string") ||
		!strings.Contains(s.problems[1], `the options of "ex.opts" are a slice`) ||
		!strings.Contains(s.problems[2], "WithNamespace changes metric names") {
		t.Errorf("problems %q, want the non-constant name, the option slice and WithNamespace", s.problems)
	}
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
		err  bool
	}{
		{expr: `histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{job=~"$job", http_route!="/v1/stream"}[$__rate_interval])))`,
			want: []string{"http_server_request_duration_seconds_bucket"}},
		{expr: `sum without (instance) (rate(a_total{reason=~"x|y", le="0.5"}[5m] offset 1h)) / on(job) group_left(kind) b_count`,
			want: []string{"a_total", "b_count"}},
		{expr: `(SUM(increase(x_total[$__range])) or vector(0)) + max_over_time(up_gauge[1h:5m] @ end())`,
			want: []string{"x_total", "up_gauge"}},
		{expr: `label_replace(sum by (messaging_destination_name) (m:rule), "topic", "$1", "messaging_destination_name", "sb\\.(.*)") > bool 1e-3`,
			want: []string{"m:rule"}},
		{expr: `topk(5, c_total) unless ignoring (pod) d > ${threshold} and e{__name__!="f"} * 0x1F`,
			want: []string{"c_total", "d", "e"}},
		{expr: "sum(rate(a[5m])) # a comment naming not_a_metric\n+ inf", want: []string{"a"}},
		{expr: `sum(rate(a[5m])`, err: true},
		{expr: `a{job="x"`, err: true},
		{expr: `rat(a[5m])`, err: true},
		{expr: `sum by le (a)`, err: true},
	} {
		got, err := metricNames(tc.expr)
		if (err != nil) != tc.err {
			t.Errorf("metricNames(%q): error %v, want an error: %v", tc.expr, err, tc.err)
			continue
		}
		if !tc.err && !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

func TestVariableMetricNames(t *testing.T) {
	for q, want := range map[string][]string{
		`label_values(target_info, job)`:                                  {"target_info"},
		`label_values(target_info{job=~"$job", x="a,b"}, instance)`:       {"target_info"},
		`label_values(job)`:                                               nil,
		`query_result(topk(3, sum by (route) (rate(h_count[$__range]))))`: {"h_count"},
	} {
		got, err := variableMetricNames(q)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("variableMetricNames(%q) = %q, %v; want %q", q, got, err, want)
		}
	}
	if _, err := variableMetricNames(`metrics(switchboard_.*)`); err == nil {
		t.Error("metrics(...) is accepted; want an error")
	}
}

// TestPromName pins the naming rules on names the exporter really produced:
// each instrument below was created through pkg/telemetry and its name read
// on the /metrics it serves (exporter v0.69.0, otlptranslator v1.0.0).
func TestPromName(t *testing.T) {
	for _, tc := range []struct {
		name, unit string
		kind       instrumentKind
		want       string
	}{
		{"switchboard.bus.dead_lettered", "", kindCounter, "switchboard_bus_dead_lettered_total"},
		{"http.server.request.duration", "s", kindHistogram, "http_server_request_duration_seconds"},
		{"messaging.batch.message_count", "", kindHistogram, "messaging_batch_message_count"},
		{"switchboard.bus.lag", "", kindGauge, "switchboard_bus_lag"},
		{"probe.a.total.b", "", kindCounter, "probe_a_b_total"},
		{"probe.msgs", "{message}", kindCounter, "probe_msgs_total"},
		{"probe.bytes", "By", kindCounter, "probe_bytes_total"},
		{"probe.updown", "1", kindUpDownCounter, "probe_updown"},
		{"probe.ms", "ms", kindHistogram, "probe_ms_milliseconds"},
		{"probe.seconds.x", "s", kindHistogram, "probe_seconds_x"},
		{"probe.ratio.g", "1", kindGauge, "probe_g_ratio"},
		{"probe.rate", "By/s", kindGauge, "probe_rate_bytes_per_second"},
		{"probe.rate2", "{req}/s", kindGauge, "probe_rate2_per_second"},
		{"probe.obs.fcounter", "s", kindCounter, "probe_obs_fcounter_seconds_total"},
	} {
		got, err := promName(tc.name, tc.unit, tc.kind)
		if err != nil || got != tc.want {
			t.Errorf("promName(%q, %q, %d) = %q, %v; want %q", tc.name, tc.unit, tc.kind, got, err, tc.want)
		}
	}
	if _, err := promName("...", "", kindGauge); err == nil {
		t.Error(`promName("...") gives a name; want an error`)
	}
}
