package matcher

import (
	"cmp"
	"slices"
)

// Collapsing repeats. The index stores, and FilterCost counts, a filter's
// exclude_keywords and locations in a reduced form that matches exactly the
// same jobs (docs/matching.md §3); Compile keeps the filter as written, so that
// Reference, the oracle, checks the reduction:
//
//   - an exclude entry holds when all of its tokens are title tokens: a
//     token repeated in an entry, and the order of the tokens, change
//     nothing, so an entry is a set; and when one entry's set is a subset
//     of another's (or equal to it), the larger entry holds only when the
//     smaller one does, so it is dropped;
//   - a filter location matches when its components are a contiguous run
//     of a job location's components (or it is "remote" and the job is
//     remote): when one filter location is a contiguous run of another (or
//     equal to it), the longer one matches only when the shorter one does,
//     so it is dropped. A location "remote" is a run of any location that
//     has a "remote" component, and the job-is-remote case applies to the
//     one-component "remote" only, which is never dropped for another.
//
// Keywords, companies, excluded companies and tags are sets already (the
// index sorts them and drops repeats); visa types and seniority are bit
// sets. Repeats inside a location are not collapsed: "Seattle, Seattle" is
// a run of two components.
//
// Dropping supersets compares every pair of entries; above collapseAll
// entries (a benchmark file; the API allows far fewer) only exact repeats
// are dropped. FilterCost applies the same rule, so it counts what the
// index stores.
const collapseAll = 256

// collapseExcludes sorts exclude entries, each a sorted set without
// repeats, by length and then by value, and drops each entry that holds
// another kept entry (a repeat, or a superset). It reorders entries in
// place and returns the kept ones, a prefix of entries.
func collapseExcludes[T cmp.Ordered](entries [][]T) [][]T {
	slices.SortFunc(entries, cmpRun[T])
	subsets := len(entries) <= collapseAll
	out := entries[:0]
	for _, e := range entries {
		if len(out) > 0 && slices.Equal(out[len(out)-1], e) {
			continue
		}
		if subsets && slices.ContainsFunc(out, func(k []T) bool { return isSubset(k, e) }) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// collapseLocations sorts filter locations (component lists) by length and
// then by value, and drops each location that holds another kept location
// as a contiguous run (a repeat, or a longer location). It reorders locs in
// place and returns the kept ones, a prefix of locs.
func collapseLocations[T cmp.Ordered](locs [][]T) [][]T {
	slices.SortFunc(locs, cmpRun[T])
	subruns := len(locs) <= collapseAll
	out := locs[:0]
	for _, l := range locs {
		if len(out) > 0 && slices.Equal(out[len(out)-1], l) {
			continue
		}
		if subruns && slices.ContainsFunc(out, func(k []T) bool { return containsRun(l, k) }) {
			continue
		}
		out = append(out, l)
	}
	return out
}

func cmpRun[T cmp.Ordered](a, b []T) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return slices.Compare(a, b)
}

// isSubset reports whether every element of a is in b; both are sorted
// without repeats.
func isSubset[T cmp.Ordered](a, b []T) bool {
	if len(a) > len(b) {
		return false
	}
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
		j++
	}
	return true
}

// sortedSet sorts s and drops repeats, in place.
func sortedSet[T cmp.Ordered](s []T) []T {
	slices.Sort(s)
	return slices.Compact(s)
}
