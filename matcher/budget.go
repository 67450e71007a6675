package matcher

import (
	"fmt"
	"slices"
)

// Cost is what a filter costs the index, counted as the index stores it:
// after normalisation (docs/matching.md §1), without entries that normalise to
// nothing, and with repeats collapsed (collapse.go). Each count is a word of
// the filter's block that a job may have to check; visa types, seniority
// and min_salary are bit sets and a number, whatever their size, and are
// not counted.
type Cost struct {
	KeywordTokens      int // distinct tokens of keywords
	ExcludeEntries     int // exclude_keywords entries kept
	ExcludeTokens      int // distinct tokens of each kept entry, summed
	Locations          int // locations kept
	LocationComponents int // components of each kept location, summed
	Companies          int // distinct company keys
	ExcludeCompanies   int // distinct excluded company keys
	Tags               int // distinct tag keys
}

// FilterCost returns the cost of f. It does not check visa types or
// seniority (Compile does).
func FilterCost(f Filter) Cost {
	var c Cost
	c.KeywordTokens = len(sortedSet(Tokens(f.Keywords)))
	var ex [][]string
	for _, e := range f.ExcludeKeywords {
		if t := Tokens(e); len(t) > 0 {
			ex = append(ex, sortedSet(t))
		}
	}
	for _, e := range collapseExcludes(ex) {
		c.ExcludeEntries++
		c.ExcludeTokens += len(e)
	}
	var locs [][]string
	for _, l := range f.Locations {
		if comps := KeyComponents(l); len(comps) > 0 {
			locs = append(locs, comps)
		}
	}
	for _, l := range collapseLocations(locs) {
		c.Locations++
		c.LocationComponents += len(l)
	}
	c.Companies = len(sortedSet(keys(f.Companies)))
	c.ExcludeCompanies = len(sortedSet(keys(f.ExcludeCompanies)))
	c.Tags = len(sortedSet(keys(f.Tags)))
	return c
}

// The filter budget: the most a filter accepted through the API may cost,
// as caps on the counts of Cost. They hold the most expensive accepted
// filter (every field at its cap) to at most 10 times a typical filter in
// index bytes and in the time a job takes to check it; docs/matching.md
// ("Filter budget") states the typical filter, docs/benchmarks.md the
// measurement (BenchmarkFilterBudget). The budget is the API's: Compile,
// Index and Reference match any filter as written (benchmark files).
const (
	MaxKeywordTokens      = 8
	MaxExcludeTokens      = 24
	MaxLocations          = 8
	MaxLocationComponents = 16
	MaxCompanies          = 10
	MaxExcludeCompanies   = 20
	MaxTags               = 8
)

// BudgetExcess is a field of a filter over its cap in the filter budget.
type BudgetExcess struct {
	Field string // the filter's JSON field: "exclude_keywords"
	What  string // what is counted: "exclude-keyword tokens"
	Got   int
	Max   int
}

// Error reads "exceeds the filter budget: 312 exclude-keyword tokens, at
// most 24".
func (e BudgetExcess) Error() string {
	return fmt.Sprintf("exceeds the filter budget: %d %s, at most %d", e.Got, e.What, e.Max)
}

// budgetCaps lists the caps in the order of the filter's fields.
var budgetCaps = []struct {
	field, what string
	max         int
	got         func(Cost) int
}{
	{"keywords", "keyword tokens", MaxKeywordTokens, func(c Cost) int { return c.KeywordTokens }},
	{"exclude_keywords", "exclude-keyword tokens", MaxExcludeTokens, func(c Cost) int { return c.ExcludeTokens }},
	{"locations", "locations", MaxLocations, func(c Cost) int { return c.Locations }},
	{"locations", "location components", MaxLocationComponents, func(c Cost) int { return c.LocationComponents }},
	{"companies", "companies", MaxCompanies, func(c Cost) int { return c.Companies }},
	{"exclude_companies", "excluded companies", MaxExcludeCompanies, func(c Cost) int { return c.ExcludeCompanies }},
	{"tags", "tags", MaxTags, func(c Cost) int { return c.Tags }},
}

// CheckBudget returns each field of f over its cap, in the order of the
// filter's fields, at most one a field (for locations, the count of
// locations before that of components); none when f is within the budget.
func CheckBudget(f Filter) []BudgetExcess {
	return FilterCost(f).Check()
}

// Check is CheckBudget of the filter whose cost c is.
func (c Cost) Check() []BudgetExcess {
	var out []BudgetExcess
	for _, b := range budgetCaps {
		if got := b.got(c); got > b.max && !slices.ContainsFunc(out, func(e BudgetExcess) bool { return e.Field == b.field }) {
			out = append(out, BudgetExcess{Field: b.field, What: b.what, Got: got, Max: b.max})
		}
	}
	return out
}
