package matcher

import (
	"fmt"
	"strings"
)

// Compiled is a filter normalised once: the form both matchers evaluate.
// Entries that normalise to nothing are left out (docs/matching.md,
// "Project decisions on edges").
type Compiled struct {
	Keywords         []string   // tokens(keywords)
	ExcludeKeywords  [][]string // tokens of each entry with at least one token
	Visa             uint16     // bit set; 0 is an absent clause
	Locations        [][]string // key components of each location
	MinSalary        float64    // 0 is an absent clause
	Companies        []string   // key of each entry
	ExcludeCompanies []string
	Seniority        uint8 // bit set; 0 is an absent clause
	Tags             []string
}

// Compile normalises f. It fails, naming the value, on an unknown visa code
// or seniority: those are validation errors (docs/matching.md §4, §6).
func Compile(f Filter) (*Compiled, error) {
	c := &Compiled{Keywords: Tokens(f.Keywords)}
	for _, e := range f.ExcludeKeywords {
		if t := Tokens(e); len(t) > 0 {
			c.ExcludeKeywords = append(c.ExcludeKeywords, t)
		}
	}
	for _, v := range f.VisaTypes {
		bit, ok := visaBit(v)
		if !ok {
			return nil, fmt.Errorf("unknown visa type %q (valid: %s)", v, strings.Join(visaCodes[:], ", "))
		}
		c.Visa |= bit
	}
	if c.Visa != 0 && f.IncludeUnknownVisa {
		c.Visa |= unknownVisaBit
	}
	for _, l := range f.Locations {
		if comps := KeyComponents(l); len(comps) > 0 {
			c.Locations = append(c.Locations, comps)
		}
	}
	if f.MinSalary > 0 {
		c.MinSalary = float64(f.MinSalary)
	}
	c.Companies = keys(f.Companies)
	c.ExcludeCompanies = keys(f.ExcludeCompanies)
	for _, s := range f.Seniority {
		bit, ok := seniorityBit(s)
		if !ok {
			return nil, fmt.Errorf("unknown seniority %q (valid: %s)", s, strings.Join(seniorityLevels[:], ", "))
		}
		c.Seniority |= bit
	}
	c.Tags = keys(f.Tags)
	return c, nil
}

func keys(in []string) []string {
	var out []string
	for _, s := range in {
		if k := Key(s); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// HasPositiveClause reports whether the filter has a clause that narrows the
// jobs it matches; exclude clauses alone do not count (docs/matching.md §3).
func (c *Compiled) HasPositiveClause() bool {
	return len(c.Keywords) > 0 || c.Visa != 0 || len(c.Locations) > 0 || len(c.Companies) > 0 ||
		c.Seniority != 0 || len(c.Tags) > 0 || c.MinSalary > 0
}

// Matches reports whether the filter matches the job, clause by clause,
// exactly as docs/matching.md §3 states. It is the definition the index is
// tested against.
func (c *Compiled) Matches(j *PreparedJob) bool {
	for _, k := range c.Keywords {
		if !j.HasTitleToken(k) {
			return false
		}
	}
	for _, ex := range c.ExcludeKeywords {
		all := true
		for _, k := range ex {
			if !j.HasTitleToken(k) {
				all = false
				break
			}
		}
		if all {
			return false
		}
	}
	if c.Visa != 0 && c.Visa&j.Visa == 0 {
		return false
	}
	if len(c.Locations) > 0 && !c.matchesLocation(j) {
		return false
	}
	if c.MinSalary > 0 && (!j.HasSalary || j.AnnualUSD < c.MinSalary) {
		return false
	}
	if len(c.Companies) > 0 && !contains(c.Companies, j.Company) {
		return false
	}
	if contains(c.ExcludeCompanies, j.Company) {
		return false
	}
	if c.Seniority != 0 && c.Seniority&j.Seniority == 0 {
		return false
	}
	if len(c.Tags) > 0 && !intersects(c.Tags, j.Tags) {
		return false
	}
	return true
}

func (c *Compiled) matchesLocation(j *PreparedJob) bool {
	for _, f := range c.Locations {
		if j.Remote && len(f) == 1 && f[0] == "remote" {
			return true
		}
		for _, loc := range j.Locations {
			if ContainsRun(loc, f) {
				return true
			}
		}
	}
	return false
}

// ContainsRun reports whether run equals a contiguous run of comps.
func ContainsRun(comps, run []string) bool { return containsRun(comps, run) }

func containsRun[T comparable](comps, run []T) bool {
	for i := 0; i+len(run) <= len(comps); i++ {
		ok := true
		for k := range run {
			if comps[i+k] != run[k] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}
