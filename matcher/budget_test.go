package matcher_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/matcher"
)

func TestFilterCost(t *testing.T) {
	tests := []struct {
		name string
		f    matcher.Filter
		want matcher.Cost
	}{
		{"empty", matcher.Filter{}, matcher.Cost{}},
		{"keyword repeats", matcher.Filter{Keywords: "Go go GO back-end backend"}, matcher.Cost{KeywordTokens: 2}},
		{"exclude repeats in an entry", matcher.Filter{ExcludeKeywords: []string{"staff staff Staff engineer"}},
			matcher.Cost{ExcludeEntries: 1, ExcludeTokens: 2}},
		{"exclude repeated entries", matcher.Filter{ExcludeKeywords: []string{"senior", "Senior", " senior ", "engineer staff", "staff engineer"}},
			matcher.Cost{ExcludeEntries: 2, ExcludeTokens: 3}},
		{"exclude superset dropped", matcher.Filter{ExcludeKeywords: []string{"senior engineer", "senior", "staff senior manager", "staff"}},
			matcher.Cost{ExcludeEntries: 2, ExcludeTokens: 2}},
		{"exclude empty entries", matcher.Filter{ExcludeKeywords: []string{"", " - ", "lead"}}, matcher.Cost{ExcludeEntries: 1, ExcludeTokens: 1}},
		{"location repeats", matcher.Filter{Locations: []string{"Seattle, WA", "seattle,wa", " SEATTLE ,  WA ", "", " , "}},
			matcher.Cost{Locations: 1, LocationComponents: 2}},
		{"location holding another dropped", matcher.Filter{Locations: []string{"Seattle, WA, US", "WA", "Austin, TX", "TX, US", "remote", "Remote, US"}},
			matcher.Cost{Locations: 4, LocationComponents: 6}},
		{"location repeats inside kept", matcher.Filter{Locations: []string{"York, York", "York, New York"}},
			matcher.Cost{Locations: 2, LocationComponents: 4}},
		{"location not contiguous kept", matcher.Filter{Locations: []string{"Seattle, US", "Seattle, WA, US"}},
			matcher.Cost{Locations: 2, LocationComponents: 5}},
		{"key sets", matcher.Filter{Companies: []string{"Acme", "acme ", "Acme, Inc", " "}, ExcludeCompanies: []string{"Globex", "GLOBEX"},
			Tags: []string{"Go", "go", "ML  Ops", "ml ops"}}, matcher.Cost{Companies: 2, ExcludeCompanies: 1, Tags: 2}},
		{"visa, seniority and salary are free", matcher.Filter{VisaTypes: matcher.VisaCodes(), Seniority: matcher.SeniorityLevels(), MinSalary: 1},
			matcher.Cost{}},
	}
	for _, tt := range tests {
		if got := matcher.FilterCost(tt.f); got != tt.want {
			t.Errorf("%s: FilterCost: got %+v want %+v", tt.name, got, tt.want)
		}
	}
}

func TestCheckBudget(t *testing.T) {
	words := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("w%d", i)
		}
		return out
	}
	locs := func(n, comps int) []string {
		out := make([]string, n)
		for i := range out {
			parts := []string{fmt.Sprintf("city%d", i)}
			for k := 1; k < comps; k++ {
				parts = append(parts, fmt.Sprintf("r%d", k))
			}
			out[i] = strings.Join(parts, ", ")
		}
		return out
	}
	atCaps := matcher.Filter{
		Keywords: strings.Join(words(matcher.MaxKeywordTokens), " "), ExcludeKeywords: words(matcher.MaxExcludeTokens),
		Locations: locs(matcher.MaxLocations, matcher.MaxLocationComponents/matcher.MaxLocations),
		Companies: words(matcher.MaxCompanies), ExcludeCompanies: words(matcher.MaxExcludeCompanies), Tags: words(matcher.MaxTags),
	}
	want := matcher.Cost{KeywordTokens: matcher.MaxKeywordTokens, ExcludeEntries: matcher.MaxExcludeTokens, ExcludeTokens: matcher.MaxExcludeTokens,
		Locations: matcher.MaxLocations, LocationComponents: matcher.MaxLocationComponents, Companies: matcher.MaxCompanies,
		ExcludeCompanies: matcher.MaxExcludeCompanies, Tags: matcher.MaxTags}
	if got := matcher.FilterCost(atCaps); got != want {
		t.Fatalf("FilterCost at the caps: got %+v want %+v", got, want)
	}
	if got := matcher.CheckBudget(atCaps); len(got) != 0 {
		t.Fatalf("CheckBudget at the caps: got %v want none", got)
	}

	over := atCaps
	over.Keywords += " one more"
	over.ExcludeKeywords = append(words(matcher.MaxExcludeTokens), "x y")
	over.Locations = locs(matcher.MaxLocations+1, 1) // over in locations, not in components
	over.Tags = words(matcher.MaxTags + 3)
	got := matcher.CheckBudget(over)
	wantEx := []matcher.BudgetExcess{
		{Field: "keywords", What: "keyword tokens", Got: matcher.MaxKeywordTokens + 2, Max: matcher.MaxKeywordTokens},
		{Field: "exclude_keywords", What: "exclude-keyword tokens", Got: matcher.MaxExcludeTokens + 2, Max: matcher.MaxExcludeTokens},
		{Field: "locations", What: "locations", Got: matcher.MaxLocations + 1, Max: matcher.MaxLocations},
		{Field: "tags", What: "tags", Got: matcher.MaxTags + 3, Max: matcher.MaxTags},
	}
	if !slices.Equal(got, wantEx) {
		t.Fatalf("CheckBudget over the caps:\ngot  %+v\nwant %+v", got, wantEx)
	}
	if got, want := got[1].Error(), fmt.Sprintf("exceeds the filter budget: %d exclude-keyword tokens, at most %d",
		matcher.MaxExcludeTokens+2, matcher.MaxExcludeTokens); got != want {
		t.Errorf("Error: got %q want %q", got, want)
	}

	comps := atCaps
	comps.Locations = locs(2, matcher.MaxLocationComponents/2+1)
	if got := matcher.CheckBudget(comps); len(got) != 1 || got[0].Field != "locations" || got[0].What != "location components" ||
		got[0].Got != matcher.MaxLocationComponents+2 {
		t.Errorf("CheckBudget over in location components: got %+v want one excess of %d location components", got, matcher.MaxLocationComponents+2)
	}
}
