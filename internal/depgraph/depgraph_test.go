package depgraph_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/jobalert/jobalert"

// allowed is the import graph: for each package of the module (path
// relative to the module), the project packages its non-test files may
// import directly. Everything else is an error, and so is a package
// missing from the table: a new package needs a row.
var allowed = map[string][]string{
	// The shared model and small leaves import no other project package,
	// except jobevent and the benchmarks' generator, which build on
	// matcher's Job and Filter.
	"matcher":           {},
	"jobevent":          {"matcher"},
	"schedule":          {},
	"token":             {},
	"templates":         {},
	"config":            {"internal/redact"},
	"internal/grace":    {},
	"internal/clock":    {},
	"internal/redact":   {},
	"internal/liveness": {"internal/clock"}, // which processes still beat, for fast recovery of claimed work
	"internal/workload": {"matcher"},
	"internal/connect":  {"config", "internal/redact"}, // the NATS options and the Redis client of the configuration
	"internal/testenv":  {},                            // tests only
	"internal/depgraph": {},                            // this test
	"smtpsink":          {},                            // tests and the demo
	"faults":            {},                            // tests only (build tag faults)

	// The HTTP servers' connection bounds.
	"internal/connlimit": {},

	// The stages, in the order data flows through them.
	"consumer": {"jobevent", "matcher", "internal/grace"},
	"store":    {"jobevent", "matcher", "schedule", "internal/clock", "internal/liveness"},
	"preview":  {"matcher"}, // the subscribe form's live preview, in the api role
	"notifier": {"store", "channel", "jobevent", "matcher", "schedule", "templates", "internal/grace", "internal/clock", "internal/redact"},
	"webhook":  {"store", "jobevent", "matcher", "internal/grace", "internal/clock", "internal/redact", "internal/liveness"},
	"api": {"notifier", "webhook", "store", "preview", "jobevent", "matcher", "schedule", "templates", "token", "internal/grace", "internal/redact",
		// Slack and Discord URL validation; the feed store and handler
		// behind api.Feeds and Deps.FeedHandler (tests use the real ones).
		"channel", "channel/slack", "channel/discord", "channel/feed"},

	// Chat channels and the feed (docs/channels.md). The
	// model is a leaf beside jobevent; Slack and Discord post through
	// hook, which dials through webhook's SSRF guard.
	"channel":          {"matcher", "internal/clock"},
	"channel/hook":     {"channel", "webhook", "internal/redact"},
	"channel/slack":    {"channel", "channel/hook", "webhook"},
	"channel/discord":  {"channel", "channel/hook", "webhook"},
	"channel/telegram": {"channel", "internal/redact"},
	"channel/feed":     {"channel", "internal/redact"},
	"channel/chattest": {"channel", "matcher"}, // tests only: fake Slack, Discord and Telegram
	// Mock-ups of rendered messages, for docs/channels.md's screenshots.
	"channel/preview": {"channel", "channel/slack", "channel/discord", "channel/telegram", "matcher"},

	// Wiring and tools.
	"bench": {"consumer", "store", "notifier", "webhook", "preview", "jobevent", "matcher", "schedule", "templates",
		"internal/grace", "internal/workload", "smtpsink"},
	"cmd/jobalert": {"api", "bench", "config", "consumer", "jobevent", "matcher", "notifier", "preview", "schedule",
		"smtpsink", "store", "templates", "token", "webhook", "internal/grace", "internal/connlimit", "internal/connect", "internal/liveness", "internal/redact",
		"channel", "channel/hook", "channel/slack", "channel/discord", "channel/telegram", "channel/feed"},

	// Tests of the deployment files (docker-compose.yml), no code: kept
	// apart so that no binary imports the compose loader.
	"internal/deploytest": {"config"},
}

// neverDeps spells out, for the stages, the packages that must not appear
// anywhere among their dependencies (`go list -deps`): no stage depends on
// an earlier one (consumer) or on a later one, and peers stay apart.
var neverDeps = map[string][]string{
	"matcher":  {"jobevent", "consumer", "store", "notifier", "webhook", "api", "bench", "internal/workload"},
	"jobevent": {"consumer", "store", "notifier", "webhook", "api", "bench"},
	"consumer": {"store", "notifier", "webhook", "api", "bench"},
	"store":    {"consumer", "notifier", "webhook", "api", "bench"},
	"notifier": {"consumer", "webhook", "api", "bench"},
	"webhook":  {"consumer", "notifier", "api", "bench"},
	"api":      {"consumer", "bench"},

	"channel":          {"consumer", "store", "notifier", "webhook", "api", "bench"},
	"channel/telegram": {"consumer", "store", "notifier", "webhook", "api", "bench"},
	"channel/feed":     {"consumer", "store", "notifier", "webhook", "api", "bench"},
}

// testHelpers may also be imported by any package's tests, besides what
// the package itself may import and the package itself.
var testHelpers = []string{"internal/testenv", "internal/workload", "internal/clock", "smtpsink", "jobevent", "channel/chattest"}

// anyTestImports are the packages whose tests exercise the whole service
// and may import any project package.
var anyTestImports = []string{"cmd/jobalert", "faults"}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
	Deps         []string
	Error        *struct{ Err string }
}

func TestImportGraph(t *testing.T) {
	pkgs := goList(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		name := rel(p.ImportPath)
		seen[name] = true
		if p.Error != nil {
			t.Errorf("%s: %s", name, p.Error.Err)
		}
		ok, listed := allowed[name]
		if !listed {
			t.Errorf("%s is not in the allowed import graph: add a row to allowed (and neverDeps if it is a stage)", name)
			continue
		}
		for _, imp := range project(p.Imports) {
			if !slices.Contains(ok, imp) {
				t.Errorf("%s imports %s: not allowed (it may import %v)", name, imp, ok)
			}
		}
		for _, dep := range project(p.Deps) {
			if slices.Contains(neverDeps[name], dep) {
				t.Errorf("%s depends on %s (go list -deps %s): a stage must not depend on an earlier or a later one", name, dep, p.ImportPath)
			}
		}
		if slices.Contains(anyTestImports, name) {
			continue
		}
		for _, imp := range project(append(slices.Clone(p.TestImports), p.XTestImports...)) {
			if imp != name && !slices.Contains(ok, imp) && !slices.Contains(testHelpers, imp) {
				t.Errorf("tests of %s import %s: not allowed (they may import %v and the helpers %v)", name, imp, ok, testHelpers)
			}
		}
	}
	var stale []string
	for name := range allowed {
		if !seen[name] {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	for _, name := range stale {
		t.Errorf("allowed lists %s, which go list does not report: remove its row", name)
	}
	for name := range neverDeps {
		if _, ok := allowed[name]; !ok {
			t.Errorf("neverDeps lists %s, which has no row in allowed", name)
		}
	}
}

// TestTableIsLayered checks the table itself: following allowed from any
// package never reaches one of its neverDeps, and never comes back to it.
func TestTableIsLayered(t *testing.T) {
	for name := range allowed {
		reach := closure(name)
		if reach[name] {
			t.Errorf("allowed has a cycle through %s", name)
		}
		for _, never := range neverDeps[name] {
			if reach[never] {
				t.Errorf("allowed lets %s reach %s, which neverDeps forbids", name, never)
			}
		}
	}
}

func closure(from string) map[string]bool {
	reach := map[string]bool{}
	todo := slices.Clone(allowed[from])
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if reach[p] {
			continue
		}
		reach[p] = true
		todo = append(todo, allowed[p]...)
	}
	return reach
}

// goList runs go list over the module, with the build tags that select
// test files (faults), and decodes its stream of JSON objects.
func goList(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-tags", "faults",
		"-json=ImportPath,Imports,TestImports,XTestImports,Deps,Error", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < len(neverDeps) {
		t.Fatalf("go list reported %d packages; is the test run inside the module?", len(pkgs))
	}
	return pkgs
}

// project returns the module's packages among paths, relative to the
// module, without test variants ("p [p.test]") and without duplicates.
func project(paths []string) []string {
	var out []string
	for _, p := range paths {
		p, _, _ = strings.Cut(p, " ")
		if p != module && !strings.HasPrefix(p, module+"/") {
			continue
		}
		if r := rel(p); !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func rel(path string) string {
	if path == module {
		return "."
	}
	return strings.TrimPrefix(path, module+"/")
}
