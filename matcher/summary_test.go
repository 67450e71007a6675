package matcher_test

import (
	"testing"

	"github.com/jobalert/jobalert/matcher"
)

func TestSummary(t *testing.T) {
	tests := []struct {
		name   string
		filter matcher.Filter
		want   string
	}{
		{"empty", matcher.Filter{}, `jobs`},
		{"keywords and visa", matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"H-1B"}}, `"backend engineer" jobs sponsoring H-1B`},
		{"keywords spaced", matcher.Filter{Keywords: "  Backend   Engineer "}, `"Backend Engineer" jobs`},
		{"visa aliases canonical", matcher.Filter{VisaTypes: []string{"h1b", "tn", "O-1", "bogus"}}, `jobs sponsoring H-1B, TN, O-1 or bogus`},
		{"places and remote", matcher.Filter{Keywords: "go", Locations: []string{"Seattle, WA", " remote "}}, `"go" jobs in Seattle, WA or remote`},
		{"remote only with pay", matcher.Filter{Locations: []string{"Remote"}, MinSalary: 150000}, `jobs remote paying $150,000+`},
		{"pay in millions", matcher.Filter{MinSalary: 1234567}, `jobs paying $1,234,567+`},
		{"long list", matcher.Filter{Locations: []string{"a", "b", "c", "d", "e"}}, `jobs in a, b, c or 2 more`},
		{"four items shown", matcher.Filter{Tags: []string{"a", "b", "c", "d"}}, `jobs tagged a, b, c or d`},
		{"seniority companies tags", matcher.Filter{Seniority: []string{"Senior", "staff"}, Companies: []string{"Starbucks"}, Tags: []string{"java"}}, `senior or staff jobs at Starbucks tagged java`},
		{"blank entries and exclusions left out", matcher.Filter{Keywords: " ", Companies: []string{" ", "Acme"}, ExcludeKeywords: []string{"intern"}, ExcludeCompanies: []string{"Evil"}}, `jobs at Acme`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := matcher.Summary(tt.filter); got != tt.want {
				t.Errorf("Summary = %q, want %q", got, tt.want)
			}
		})
	}
	if got, want := matcher.SummaryWithNoun(matcher.Filter{Keywords: "go", Companies: []string{"Acme"}}, "job"), `"go" job at Acme`; got != want {
		t.Errorf("SummaryWithNoun = %q, want %q", got, want)
	}
	f := matcher.Filter{VisaTypes: []string{"h1b"}}
	matcher.Summary(f)
	if f.VisaTypes[0] != "h1b" {
		t.Errorf("Summary changed the filter: %v", f.VisaTypes)
	}
}
