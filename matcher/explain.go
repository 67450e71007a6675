package matcher

import (
	"strconv"
	"strings"
)

// Reason is one clause of a filter that a job satisfied: the filter field
// (Clause, as in docs/matching.md §3) and what in the job satisfied it
// (Detail), in words a subscriber reads in "why you got this".
type Reason struct {
	Clause string
	Detail string
}

// Explain reports whether the filter matches the job and, when it does,
// the positive clauses it has, each with what satisfied it, in the order of
// docs/matching.md §3. Exclude clauses, which only rule jobs out, are not
// reasons. It fails as Compile does.
func Explain(f Filter, j *Job) ([]Reason, bool, error) {
	c, err := Compile(f)
	if err != nil {
		return nil, false, err
	}
	p := Prepare(j)
	if !c.Matches(p) {
		return nil, false, nil
	}
	var out []Reason
	if len(c.Keywords) > 0 {
		out = append(out, Reason{"keywords", strings.Join(c.Keywords, " ")})
	}
	if c.Visa != 0 {
		var names []string
		for i, code := range visaCodes {
			if c.Visa&p.Visa&(1<<i) != 0 {
				names = append(names, code)
			}
		}
		if c.Visa&p.Visa&unknownVisaBit != 0 {
			names = append(names, "sponsorship not stated")
		}
		out = append(out, Reason{"visa_types", strings.Join(names, ", ")})
	}
	if len(c.Locations) > 0 {
		for i, fl := range c.Locations {
			hit := p.Remote && len(fl) == 1 && fl[0] == "remote"
			for _, loc := range p.Locations {
				hit = hit || ContainsRun(loc, fl)
			}
			if hit {
				out = append(out, Reason{"locations", locationName(f.Locations, i)})
				break
			}
		}
	}
	if c.MinSalary > 0 {
		out = append(out, Reason{"min_salary", "at least $" + thousands(int64(c.MinSalary)) + " a year"})
	}
	if len(c.Companies) > 0 {
		out = append(out, Reason{"companies", strings.TrimSpace(j.Company)})
	}
	if c.Seniority != 0 {
		out = append(out, Reason{"seniority", lowerRunes(j.Seniority)})
	}
	if len(c.Tags) > 0 {
		var hit []string
		for _, t := range c.Tags {
			if contains(p.Tags, t) {
				hit = append(hit, t)
			}
		}
		out = append(out, Reason{"tags", strings.Join(hit, ", ")})
	}
	return out, true, nil
}

// locationName returns the i-th filter location that normalises to
// something, as the subscriber wrote it.
func locationName(locs []string, i int) string {
	for _, l := range locs {
		if len(KeyComponents(l)) == 0 {
			continue
		}
		if i == 0 {
			return strings.TrimSpace(l)
		}
		i--
	}
	return ""
}

func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
