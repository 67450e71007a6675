package matcher_test

import (
	"slices"
	"testing"

	"github.com/jobalert/jobalert/matcher"
)

// TestSponsorship pins docs/matching.md §4a: the effective sponsorship of a
// job and how visa clauses treat "no" and "unknown".
func TestSponsorship(t *testing.T) {
	for _, tt := range []struct {
		j    matcher.Job
		want string
	}{
		{matcher.Job{}, "unknown"},
		{matcher.Job{VisaTypes: []string{"H-1B"}}, "yes"},
		{matcher.Job{VisaSponsorship: "No", VisaTypes: []string{"H-1B"}}, "no"},
		{matcher.Job{VisaSponsorship: "UNKNOWN"}, "unknown"},
		{matcher.Job{VisaSponsorship: "yes"}, "yes"},
		{matcher.Job{VisaSponsorship: "maybe"}, "unknown"},
	} {
		if got := tt.j.Sponsorship(); got != tt.want {
			t.Errorf("Sponsorship(%+v): got %q want %q", tt.j, got, tt.want)
		}
	}

	h1b := matcher.Filter{Keywords: "engineer", VisaTypes: []string{"H-1B"}}
	h1bUnknown := matcher.Filter{Keywords: "engineer", VisaTypes: []string{"H-1B"}, IncludeUnknownVisa: true}
	noVisa := matcher.Filter{Keywords: "engineer", IncludeUnknownVisa: true}
	job := func(s string, visas ...string) matcher.Job {
		return matcher.Job{Title: "Engineer", VisaSponsorship: s, VisaTypes: visas}
	}
	for _, tt := range []matchCase{
		{"absent, no types: unknown, not a visa match", h1b, job(""), false},
		{"absent, no types: unknown, with include", h1bUnknown, job(""), true},
		{"explicit unknown with include", h1bUnknown, job("unknown"), true},
		{"explicit unknown without include", h1b, job("unknown"), false},
		{"no never matches a visa filter", h1b, job("no", "H-1B"), false},
		{"no never matches, even with include", h1bUnknown, job("no"), false},
		{"yes without the visa: include brings in unknown only", h1bUnknown, job("yes", "TN"), false},
		{"yes with the visa", h1bUnknown, job("", "H-1B"), true},
		{"unknown listing the visa matches through the visa", h1b, job("unknown", "H-1B"), true},
		{"include without visa types changes nothing", noVisa, job("no"), true},
		{"no-visa filter matches a no job", matcher.Filter{Keywords: "engineer"}, job("no"), true},
	} {
		checkMatch(t, tt)
	}
}

func TestExplain(t *testing.T) {
	f := matcher.Filter{Keywords: "Backend engineer", VisaTypes: []string{"h1b", "TN"}, IncludeUnknownVisa: true,
		Locations: []string{" ", "Seattle, WA"}, MinSalary: 150000, Seniority: []string{"senior"}, ExcludeKeywords: []string{"staff"}}
	j := matcher.Job{Title: "Senior Backend Engineer", Company: "Acme", Locations: []string{"Seattle, WA, US"},
		Salary: &matcher.Salary{Max: 170000}, Seniority: "Senior"}
	got, ok, err := matcher.Explain(f, &j)
	if err != nil || !ok {
		t.Fatalf("Explain: got ok=%v err=%v want a match", ok, err)
	}
	want := []matcher.Reason{
		{Clause: "keywords", Detail: "backend engineer"},
		{Clause: "visa_types", Detail: "sponsorship not stated"},
		{Clause: "locations", Detail: "Seattle, WA"},
		{Clause: "min_salary", Detail: "at least $150,000 a year"},
		{Clause: "seniority", Detail: "senior"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Explain: got %+v want %+v", got, want)
	}
	j.Title = "Staff Backend Engineer"
	if got, ok, _ := matcher.Explain(f, &j); ok || got != nil {
		t.Errorf("Explain of a non-match: got %v, %v want nil, false", got, ok)
	}
}
