package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// publish --check reads the whole file, names the line and field of each
// bad event, ends with a summary, exits 1 when a line is bad, and never
// connects to NATS (the URL below has nothing listening).
func TestPublishCheck(t *testing.T) {
	getenv := func(k string) string {
		if k == "JOBALERT_NATS_URL" {
			return "nats://127.0.0.1:1"
		}
		return ""
	}
	path := filepath.Join(t.TempDir(), "jobs.jsonl")
	body := strings.Join([]string{
		`{"id":"j1","title":"Backend Engineer","company":"Acme"}`,
		`{"id":"j2","company":"Acme"}`,
		``,
		`{"id":"j3","title":"SRE","company":"Acme","salary":{"max":"lots"}}`,
		`{"id":"j4","title":"SRE","company":"Acme","visa_types":["H1B","Schengen"]}`,
		`[1,2]`,
	}, "\n") + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"publish", "--check", path}, getenv, nil, &out, &errOut)
	want := path + `:2: field "title": required
` + path + `:4: field "salary.max": want a number, got string
` + path + `:5: warning: field "visa_types": "Schengen" is not a visa code (docs/matching.md §4); dropped
` + path + `:6: body: want a JSON object
` + path + `: 5 events checked as jobs.created: 2 valid, 3 invalid, 1 warning
`
	if !errors.Is(err, errReported) || out.String() != want || errOut.Len() != 0 {
		t.Errorf("got err %v, stdout\n%s\nstderr %q\nwant errReported (exit 1), stdout\n%s", err, out.String(), errOut.String(), want)
	}

	// The same lines are valid jobs.closed events, except the last: the
	// subject decides the rules.
	out.Reset()
	err = run(context.Background(), []string{"publish", "--check", "--subject", "jobs.closed", "-"}, getenv,
		strings.NewReader(`{"id":"j1"}`+"\n"+`{"id":"j2","title":5}`+"\n"), &out, &errOut)
	if want := "stdin: 2 events checked as jobs.closed: 2 valid, 0 invalid, 1 warning\n"; err != nil || !strings.HasSuffix(out.String(), want) {
		t.Errorf("closed events: got %v, stdout %q, want no error and a summary ending %q", err, out.String(), want)
	}

	// The README's example file passes.
	out.Reset()
	example := filepath.Join("..", "..", "docs", "examples", "jobs.jsonl")
	if err := run(context.Background(), []string{"publish", "--check", example}, getenv, nil, &out, &errOut); err != nil ||
		out.String() != example+": 4 events checked as jobs.created: 4 valid, 0 invalid, 0 warnings\n" {
		t.Errorf("%s: got %v, stdout %q, want no error and 4 valid events", example, err, out.String())
	}

	// Usage errors: an unknown subject, a missing file.
	for _, args := range [][]string{{"publish", "--check", "--subject", "jobs.deleted", path}, {"publish", "--check"}} {
		errOut.Reset()
		if err := run(context.Background(), args, getenv, nil, &bytes.Buffer{}, &errOut); !errors.Is(err, errUsage) || errOut.Len() == 0 {
			t.Errorf("%v: got %v, stderr %q, want a usage error explained on stderr", args, err, errOut.String())
		}
	}
	if err := run(context.Background(), []string{"publish", "--check", filepath.Join(t.TempDir(), "none.jsonl")}, getenv, nil, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || errors.Is(err, errReported) {
		t.Errorf("missing file: got %v, want the open error", err)
	}
}
