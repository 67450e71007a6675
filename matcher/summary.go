package matcher

import (
	"strconv"
	"strings"
)

// Summary returns the filter in words, as subjects and pages use it:
// `"backend engineer" jobs sponsoring H-1B in Seattle, WA or remote`.
// Exclusions are left out.
func Summary(f Filter) string { return SummaryWithNoun(f, "jobs") }

// SummaryWithNoun is Summary with noun in place of "jobs" (a digest of one
// job says "job"): `senior "backend engineer" job at Starbucks`.
func SummaryWithNoun(f Filter, noun string) string {
	pre, post := summaryParts(f)
	return joinNonEmpty(pre, noun, post)
}

// summaryParts returns what goes before the noun "job(s)" (seniority,
// quoted keywords) and after it (companies, tags, visas, places, pay).
func summaryParts(f Filter) (pre, post string) {
	var before, after []string
	if s := trimAll(f.Seniority); len(s) > 0 {
		before = append(before, orList(lowerAll(s)))
	}
	if k := strings.Join(strings.Fields(f.Keywords), " "); k != "" {
		before = append(before, strconv.Quote(k))
	}
	if c := trimAll(f.Companies); len(c) > 0 {
		after = append(after, "at "+orList(c))
	}
	if t := trimAll(f.Tags); len(t) > 0 {
		after = append(after, "tagged "+orList(t))
	}
	if v := trimAll(f.VisaTypes); len(v) > 0 {
		for i, code := range v {
			if c, ok := CanonicalVisa(code); ok {
				v[i] = c
			}
		}
		if f.IncludeUnknownVisa {
			after = append(after, "sponsoring "+orList(v)+" (or not saying)")
		} else {
			after = append(after, "sponsoring "+orList(v))
		}
	}
	var places []string
	remote := false
	for _, l := range trimAll(f.Locations) {
		if strings.EqualFold(l, "remote") {
			remote = true
			continue
		}
		places = append(places, l)
	}
	switch {
	case len(places) > 0 && remote:
		after = append(after, "in "+orList(append(places, "remote")))
	case len(places) > 0:
		after = append(after, "in "+orList(places))
	case remote:
		after = append(after, "remote")
	}
	if f.MinSalary > 0 {
		after = append(after, "paying "+dollars(f.MinSalary)+"+")
	}
	return strings.Join(before, " "), strings.Join(after, " ")
}

// dollars writes a whole amount with thousands separated by commas:
// "$150,000".
func dollars(v int64) string {
	digits := strconv.FormatFloat(float64(v), 'f', 0, 64)
	var b strings.Builder
	b.WriteString("$")
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// orList writes "a", "a or b", "a, b or c", and past three items
// "a, b, c or 2 more".
func orList(items []string) string {
	const shown = 3
	if len(items) > shown+1 {
		return strings.Join(items[:shown], ", ") + " or " + strconv.Itoa(len(items)-shown) + " more"
	}
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func joinNonEmpty(parts ...string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func trimAll(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func lowerAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

// WorkplaceLabel names a job's workplace for people ("Remote", "Hybrid",
// "On-site"), or "" when the job's value is none of them: emails and chat
// messages show the same words.
func WorkplaceLabel(w string) string {
	switch strings.ToLower(strings.TrimSpace(w)) {
	case "remote":
		return "Remote"
	case "hybrid":
		return "Hybrid"
	case "onsite", "on-site":
		return "On-site"
	}
	return ""
}
