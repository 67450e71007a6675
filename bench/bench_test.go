package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/bench"
	"github.com/jobalert/jobalert/matcher"
)

func mustGen(tb testing.TB, args ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	var out bytes.Buffer
	if err := bench.Main(context.Background(), append([]string{"gen", "--out", dir}, args...), &out); err != nil {
		tb.Fatalf("bench gen %v: %v", args, err)
	}
	return dir
}

func TestGenIsDeterministic(t *testing.T) {
	a := mustGen(t, "--filters", "500", "--jobs", "50", "--seed", "7")
	b := mustGen(t, "--filters", "500", "--jobs", "50", "--seed", "7")
	for _, name := range []string{"filters.jsonl", "jobs.jsonl"} {
		x, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	filters, err := bench.ReadFilters(filepath.Join(a, "filters.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := bench.ReadJobs(filepath.Join(a, "jobs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(filters) != 500 || len(jobs) != 50 {
		t.Fatalf("read back: got %d filters, %d jobs want 500, 50", len(filters), len(jobs))
	}
}

func TestMatchCommand(t *testing.T) {
	dir := mustGen(t, "--filters", "3000", "--jobs", "40", "--seed", "3")
	outPath := filepath.Join(dir, "matches.jsonl")
	var out bytes.Buffer
	err := bench.Main(context.Background(), []string{"match",
		"--filters", filepath.Join(dir, "filters.jsonl"), "--jobs", filepath.Join(dir, "jobs.jsonl"),
		"--out", outPath, "--reference"}, &out)
	if err != nil {
		t.Fatalf("bench match: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{"RESULT filters=3000 jobs=40 build_ms=", " heap_bytes_per_filter=", " mean_us=", " p50_us=", " p99_us=", " matches=", " speedup=", " diffs=0"} {
		if !strings.Contains(last, want) {
			t.Errorf("last line: got %q want it to contain %q", last, want)
		}
	}
	if !strings.HasPrefix(last, "RESULT ") {
		t.Errorf("last line: got %q want RESULT first", last)
	}

	// --out: one line a job, in input order, ids sorted, [] when none.
	jobs, err := bench.ReadJobs(filepath.Join(dir, "jobs.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	filters, err := bench.ReadFilters(filepath.Join(dir, "filters.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	ref := matcher.NewReference()
	for _, f := range filters {
		if err := ref.Add(f.ID, f.Filter); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	outLines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(outLines) != len(jobs) {
		t.Fatalf("--out lines: got %d want %d", len(outLines), len(jobs))
	}
	for i, l := range outLines {
		var m struct {
			JobID     string    `json:"job_id"`
			FilterIDs *[]string `json:"filter_ids"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		if m.FilterIDs == nil {
			t.Fatalf("line %d: filter_ids missing or null, want a list", i+1)
		}
		want := ref.MatchIDs(&jobs[i])
		if m.JobID != jobs[i].ID || !slices.Equal(*m.FilterIDs, append([]string{}, want...)) {
			t.Fatalf("line %d: got %s %v want %s %v", i+1, m.JobID, *m.FilterIDs, jobs[i].ID, want)
		}
	}
}

func write(tb testing.TB, name, body string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestReadFilters(t *testing.T) {
	p := write(t, "f.jsonl", `{"id":"a","keywords":"go","visa_types":["h1b","GC"," o-1a "]}`+"\n\n"+`{"id":"b","seniority":["Senior"]}`+"\n")
	fs, err := bench.ReadFilters(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fs[0].VisaTypes, []string{"H-1B", "GREEN-CARD", "O-1"}; !slices.Equal(got, want) {
		t.Errorf("visa canonicalised: got %v want %v", got, want)
	}
	for _, tt := range []struct{ body, want string }{
		{`{"id":"a","keywords":"go"}` + "\n" + `{"id":"b","visa_types":["H-2A"]}`, `f.jsonl:2: unknown visa type "H-2A"`},
		{`{"id":"a","seniority":["lead"]}`, `f.jsonl:1: unknown seniority "lead"`},
		{`{"id":"a","keywords":"go","colour":"red"}`, `f.jsonl:1: json: unknown field "colour"`},
		{`{"keywords":"go"}`, `f.jsonl:1: missing "id"`},
		{`{"id":"a","keywords":"go"}` + "\n" + `{"id":"a","keywords":"js"}`, `f.jsonl:2: id "a" repeats line 1`},
		{`{"id":"a",`, `f.jsonl:1:`},
	} {
		_, err := bench.ReadFilters(write(t, "f.jsonl", tt.body))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadFilters(%q): got %v want an error containing %q", tt.body, err, tt.want)
		}
	}
}

func TestReadJobs(t *testing.T) {
	p := write(t, "j.jsonl", `{"id":"1","title":"Go Engineer","company":"Acme","unknown":1,"visa_types":["bogus"]}`+"\n"+`{"id":"2","company":"Acme"}`+"\n")
	_, err := bench.ReadJobs(p)
	if err == nil || !strings.Contains(err.Error(), "j.jsonl:2: missing title") {
		t.Fatalf("ReadJobs: got %v want an error naming line 2 and title", err)
	}
}

func TestMainDispatch(t *testing.T) {
	var out bytes.Buffer
	if err := bench.Main(context.Background(), nil, &out); err == nil || !strings.Contains(err.Error(), "gen, match") {
		t.Errorf("Main(): got %v want an error listing the benchmarks", err)
	}
	if err := bench.Main(context.Background(), []string{"nope"}, &out); err == nil {
		t.Errorf("Main(nope): got nil want an error")
	}
	if err := bench.Main(context.Background(), []string{"match"}, &out); err == nil {
		t.Errorf("match without files: got nil want an error")
	}
	if err := bench.Main(context.Background(), []string{"gen", "--filters", "1"}, &out); err == nil {
		t.Errorf("gen without --out: got nil want an error")
	}
}

func TestPreviewCommand(t *testing.T) {
	var out bytes.Buffer
	if err := bench.Main(context.Background(), []string{"preview", "--jobs", "2000", "--filters", "50", "--scan"}, &out); err != nil {
		t.Fatalf("bench preview: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{"RESULT jobs=2000 filters=50 p50_us=", " p99_us=", " scan_p99_us=", " speedup_p99="} {
		if !strings.Contains(last, want) {
			t.Errorf("last line: got %q want it to contain %q", last, want)
		}
	}
}
