package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Metric names Prometheus itself makes, which no jobalert registry has.
var prometheusMade = []string{"up", "ALERTS"}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promBraces   = regexp.MustCompile(`\{[^{}]*\}`)
	promBrackets = regexp.MustCompile(`\[[^\[\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	grafanaVar   = regexp.MustCompile(`\$\{[^}]*\}|\$[A-Za-z_]+`)
	promIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
		"group_left", "group_right", "inf", "nan", "Inf", "NaN"}
)

// metricNames returns the metric names a PromQL expression reads: what is
// left once strings, label matchers, ranges, grouping clauses, Grafana
// variables, function names and keywords are gone.
func metricNames(expr string) []string {
	s := grafanaVar.ReplaceAllString(expr, "")
	s = promString.ReplaceAllString(s, `""`)
	s = promBraces.ReplaceAllString(s, " ")
	s = promBrackets.ReplaceAllString(s, " ")
	s = promGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		rest := strings.TrimLeft(s[loc[1]:], " \t\n")
		if strings.HasPrefix(rest, "(") || slices.Contains(promKeywords, name) {
			continue // a function, or a keyword
		}
		if loc[0] > 0 && (s[loc[0]-1] >= '0' && s[loc[0]-1] <= '9' || s[loc[0]-1] == '.') {
			continue // the exponent or unit of a number (1e3, 5m)
		}
		out = append(out, name)
	}
	return out
}

func TestMetricNamesOfAnExpression(t *testing.T) {
	got := metricNames(`sum by (kind) (rate(jobalert_emails_total{instance=~"$instance", outcome="sent"}[$__rate_interval])) / ` +
		`on (job) group_left max(up{job="a"}) > 1e3 and histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) or vector(0)`)
	if want := []string{"jobalert_emails_total", "up", "x_bucket"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// yamlExprs returns the PromQL expressions of a rules file ("expr:", one
// line or a block scalar) and the series names of a rules test file
// ("series:").
func yamlExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	indent := func(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
	var out []string
	for i := 0; i < len(lines); i++ {
		key, val, ok := strings.Cut(strings.TrimSpace(lines[i]), ":")
		key = strings.TrimPrefix(key, "- ")
		if !ok || (key != "expr" && key != "series") {
			continue
		}
		val = strings.TrimSpace(val)
		if strings.HasPrefix(val, "|") || strings.HasPrefix(val, ">") {
			var block []string
			for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || indent(lines[i+1]) > indent(lines[i])) {
				i++
				block = append(block, strings.TrimSpace(lines[i]))
			}
			val = strings.Join(block, "\n")
		}
		out = append(out, strings.Trim(val, `'"`))
	}
	if len(out) == 0 {
		t.Fatalf("%s: no expressions found", path)
	}
	return out
}

// dashboardExprs returns the queries of a Grafana dashboard: every panel's
// targets and every query variable's.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("%s: got uid %q title %q, want both set", path, d.UID, d.Title)
	}
	var out []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", path, p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\(([^,]+),`)
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); v.Type == "query" && m != nil {
			out = append(out, m[1])
		}
	}
	return out
}

// Every metric the dashboard and the alert rules (and their tests) read is
// one a running service registers.
func TestDeployFilesUseRegisteredMetrics(t *testing.T) {
	s := startStack(t, stackOpts{metrics: true})
	mfs, err := s.app.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	families := map[string]string{}
	for _, mf := range mfs {
		families[mf.GetName()] = mf.GetType().String()
	}
	known := func(name string) bool {
		if _, ok := families[name]; ok || slices.Contains(prometheusMade, name) {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && families[base] == "HISTOGRAM" {
				return true
			}
		}
		return false
	}
	used := map[string]bool{}
	for path, exprs := range map[string][]string{
		"deploy/grafana/jobalert.json":      dashboardExprs(t, "../../deploy/grafana/jobalert.json"),
		"deploy/prometheus/alerts.yml":      yamlExprs(t, "../../deploy/prometheus/alerts.yml"),
		"deploy/prometheus/alerts_test.yml": yamlExprs(t, "../../deploy/prometheus/alerts_test.yml"),
	} {
		for _, e := range exprs {
			names := metricNames(e)
			if len(names) == 0 {
				t.Errorf("%s: %q reads no metric", path, e)
			}
			for _, n := range names {
				used[n] = true
				if !known(n) {
					t.Errorf("%s: %q reads %s, which the service does not register", path, e, n)
				}
			}
		}
	}
	// The alerts the operations guide explains are all there.
	rules, err := os.ReadFile("../../deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"JobalertConsumerStalled", "JobalertBacklogGrowing", "JobalertPoisonArriving", "JobalertRecordErrors",
		"JobalertSMTPDeferrals", "JobalertWebhookDeadLetters", "JobalertNotReady"} {
		if !strings.Contains(string(rules), "alert: "+a+"\n") {
			t.Errorf("deploy/prometheus/alerts.yml: no alert %s", a)
		}
	}
	if len(used) < 30 {
		t.Errorf("got %d distinct metrics used by the deploy files, want the dashboard's and the rules' (30+)", len(used))
	}
}
