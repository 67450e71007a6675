package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/matcher"
)

// budgetWorstFilter is the filter of the finding: 100 keyword tokens, 50
// exclude entries of 100 tokens, 25 locations of 100 components, each
// string within the 200-character limit (one-character tokens).
func budgetWorstFilter() map[string]any {
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	run := func(from int, sep string) string {
		parts := make([]string, 100)
		for i := range parts {
			parts[i] = string(chars[(from+i)%len(chars)])
		}
		return strings.Join(parts, sep)
	}
	exclude := make([]string, 50)
	for i := range exclude {
		exclude[i] = run(i, " ")
	}
	locations := make([]string, 25)
	for i := range locations {
		locations[i] = run(i, ",")
	}
	return map[string]any{"keywords": run(0, " "), "exclude_keywords": exclude, "locations": locations}
}

// budgetCapFilter has every field the budget counts at its cap.
func budgetCapFilter() map[string]any {
	words := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return out
	}
	locations := make([]string, matcher.MaxLocations)
	for i := range locations { // two components each
		locations[i] = fmt.Sprintf("City %d, ST", i)
	}
	return map[string]any{
		"keywords":          strings.Join(words("kw", matcher.MaxKeywordTokens), " "),
		"exclude_keywords":  words("ex", matcher.MaxExcludeTokens),
		"locations":         locations,
		"companies":         words("Company ", matcher.MaxCompanies),
		"exclude_companies": words("Agency ", matcher.MaxExcludeCompanies),
		"tags":              words("tag", matcher.MaxTags),
		"visa_types":        matcher.VisaCodes(),
		"seniority":         matcher.SeniorityLevels(),
		"min_salary":        100000,
	}
}

func TestFilterBudget(t *testing.T) {
	e := newEnv(t)
	if got := 2 * matcher.MaxLocations; got != matcher.MaxLocationComponents {
		t.Fatalf("budgetCapFilter has %d location components, want the cap %d", got, matcher.MaxLocationComponents)
	}

	t.Run("the finding's filter", func(t *testing.T) {
		r := e.postJSON("/v1/subscriptions", map[string]any{"email": "worst@example.com", "filter": budgetWorstFilter()})
		if r.status != http.StatusBadRequest || r.code(t) != "invalid" {
			t.Fatalf("got %d %s, want 400 invalid", r.status, r.body)
		}
		want := map[string]string{
			"filter.keywords":         fmt.Sprintf("exceeds the filter budget: 36 keyword tokens, at most %d", matcher.MaxKeywordTokens),
			"filter.exclude_keywords": fmt.Sprintf("exceeds the filter budget: 36 exclude-keyword tokens, at most %d", matcher.MaxExcludeTokens),
			"filter.locations":        fmt.Sprintf("exceeds the filter budget: 25 locations, at most %d", matcher.MaxLocations),
		}
		got := r.fields(t)
		for k, w := range want {
			if got[k] != w {
				t.Errorf("fields[%q]: got %q want %q", k, got[k], w)
			}
		}
		if len(got) != len(want) {
			t.Errorf("fields: got %v, want exactly the keys of %v", got, want)
		}
	})

	t.Run("at the caps", func(t *testing.T) {
		r := e.postJSON("/v1/subscriptions", map[string]any{"email": "caps@example.com", "filter": budgetCapFilter()})
		if r.status != http.StatusCreated {
			t.Fatalf("got %d %s, want 201", r.status, r.body)
		}
	})

	t.Run("one over a cap", func(t *testing.T) {
		f := budgetCapFilter()
		f["exclude_keywords"] = append(f["exclude_keywords"].([]string), "one more")
		r := e.postJSON("/v1/subscriptions", map[string]any{"email": "over@example.com", "filter": f})
		if r.status != http.StatusBadRequest {
			t.Fatalf("got %d %s, want 400", r.status, r.body)
		}
		got := r.fields(t)
		want := fmt.Sprintf("exceeds the filter budget: %d exclude-keyword tokens, at most %d", matcher.MaxExcludeTokens+2, matcher.MaxExcludeTokens)
		if got["filter.exclude_keywords"] != want || len(got) != 1 {
			t.Errorf("fields: got %v, want only filter.exclude_keywords: %q", got, want)
		}
	})

	t.Run("repeats are not counted", func(t *testing.T) {
		f := budgetCapFilter()
		ex := f["exclude_keywords"].([]string)
		// A repeat, a repeat in another case and order, and a longer entry
		// that holds only when "ex0" does: none changes what matches.
		f["exclude_keywords"] = append(ex, ex[0], "EX2 ex1", "ex1 ex2 ex1", "staff ex0")
		f["locations"] = append(f["locations"].([]string), "city 0 , st", "Seattle, City 1, ST")
		r := e.postJSON("/v1/subscriptions", map[string]any{"email": "repeats@example.com", "filter": f})
		if r.status != http.StatusCreated {
			t.Fatalf("got %d %s, want 201", r.status, r.body)
		}
	})

	t.Run("the form", func(t *testing.T) {
		locs := make([]string, matcher.MaxLocations+1)
		for i := range locs {
			locs[i] = fmt.Sprintf("City %d", i)
		}
		form := url.Values{"email": {"form-budget@example.com"}, "keywords": {"backend"}, "locations": {strings.Join(locs, "\r\n")},
			"frequency": {"daily"}, "timezone": {"UTC"}, "send_hour": {"8"}, "weekly_day": {"monday"}}
		r := e.postForm("/", form)
		want := fmt.Sprintf("Exceeds the filter budget: %d locations, at most %d", matcher.MaxLocations+1, matcher.MaxLocations)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, `id="locations-err">`+want) {
			t.Fatalf("got %d, want 400 with %q next to the locations\n%s", r.status, want, r.body)
		}
	})
}
