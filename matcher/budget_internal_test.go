package matcher

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// progWords is the length of the prog the index stores for a filter of
// cost c.
func progWords(c Cost) int {
	words := 0
	for _, s := range []struct{ n, words int }{
		{c.KeywordTokens, 1 + c.KeywordTokens},
		{c.Locations, 1 + 2*c.Locations + c.LocationComponents},
		{c.Companies, 1 + c.Companies},
		{c.ExcludeCompanies, 1 + c.ExcludeCompanies},
		{c.Tags, 1 + c.Tags},
		{c.ExcludeEntries, 1 + c.ExcludeEntries + c.ExcludeTokens},
	} {
		if s.n > 0 {
			words += s.words
		}
	}
	return words
}

// TestFilterCostIsWhatTheIndexStores compiles filters full of repeats
// for the index and checks that FilterCost counts what it stores.
func TestFilterCostIsWhatTheIndexStores(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	vocab := []string{"a", "B", "b", "c", "d-e", "de", "f", "g"}
	text := func(sep string, max int) string {
		parts := make([]string, r.IntN(max+1))
		for i := range parts {
			parts[i] = vocab[r.IntN(len(vocab))]
		}
		return strings.Join(parts, sep)
	}
	list := func(sep string, n, max int) []string {
		out := make([]string, r.IntN(n+1))
		for i := range out {
			out[i] = text(sep, max)
		}
		return out
	}
	ix := NewIndex()
	for i := range 3000 {
		f := Filter{Keywords: text(" ", 5), ExcludeKeywords: list(" ", 8, 4), Locations: list(", ", 8, 4),
			Companies: list(" ", 4, 2), ExcludeCompanies: list(" ", 4, 2), Tags: list(" ", 4, 2)}
		var c compiler
		var cf cfilter
		if err := c.compile(&ix.dict, ix.dict.internBytes, &f, &cf); err != nil {
			t.Fatal(err)
		}
		cost := FilterCost(f)
		if got, want := len(cf.prog), progWords(cost); got != want {
			t.Fatalf("filter %d %+v: the index stores %d words, FilterCost %+v makes %d", i, f, got, cost, want)
		}
	}
}

// TestFilterBudgetSets checks the sets of BenchmarkFilterBudget: the worst
// filters are at the caps and accepted, the typical ones have the stated
// shape, and no two filters of a set share a group (the worst ones differ
// in their exclude keywords, the typical ones in keywords or locations).
func TestFilterBudgetSets(t *testing.T) {
	caps := Cost{KeywordTokens: MaxKeywordTokens, ExcludeEntries: MaxExcludeTokens, ExcludeTokens: MaxExcludeTokens,
		Locations: MaxLocations, LocationComponents: MaxLocationComponents, Companies: MaxCompanies,
		ExcludeCompanies: MaxExcludeCompanies, Tags: MaxTags}
	for _, withCompanies := range []bool{true, false} {
		want := caps
		if !withCompanies {
			want.Companies = 0
		}
		next := worstFilters(withCompanies)
		seen := map[string]bool{}
		for i := range 2000 {
			f := next(i)
			if key := fmt.Sprint(f.ExcludeKeywords); seen[key] {
				t.Fatalf("worst filter %d: the exclude keywords of an earlier one", i)
			} else {
				seen[key] = true
			}
			if got := FilterCost(f); got != want {
				t.Fatalf("worst filter %d (companies %v): cost %+v want %+v", i, withCompanies, got, want)
			}
			if ex := CheckBudget(f); len(ex) > 0 {
				t.Fatalf("worst filter %d: over the budget: %v", i, ex)
			}
		}
	}
	seen := map[string]bool{}
	for i := range 10_000 {
		f := typicalFilter(i)
		c := FilterCost(f)
		if c.Locations < 1 || c.Locations > 2 || len(f.VisaTypes) < 1 || len(f.VisaTypes) > 2 ||
			c != (Cost{KeywordTokens: 2, Locations: c.Locations, LocationComponents: c.LocationComponents}) {
			t.Fatalf("typical filter %d %+v: cost %+v, want 2 keyword tokens and 1 or 2 locations", i, f, c)
		}
		key := fmt.Sprint(f.Keywords, f.Locations)
		if seen[key] {
			t.Fatalf("typical filter %d %+v: the clauses of an earlier one", i, f)
		}
		seen[key] = true
	}
}
