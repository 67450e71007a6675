package matcher

import (
	"strings"
	"unicode"
)

// Tokens splits s into lower-case tokens per docs/matching.md §1: hyphenated
// compounds are joined, and every rune that is not a letter, a digit, '+'
// or '#' separates tokens.
func Tokens(s string) []string {
	return appendTokens(nil, s)
}

func appendTokens(dst []string, s string) []string {
	rs := []rune(s)
	for i, r := range rs {
		rs[i] = unicode.ToLower(r)
	}
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			dst = append(dst, b.String())
			b.Reset()
		}
	}
	for i, r := range rs {
		if r == '-' && i > 0 && i+1 < len(rs) && isAlnum(rs[i-1]) && isAlnum(rs[i+1]) {
			continue // a joined compound: back-end -> backend
		}
		if isAlnum(r) || r == '+' || r == '#' {
			b.WriteRune(r)
			continue
		}
		flush()
	}
	flush()
	return dst
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// TitleTokens returns tokens(title) plus the concatenation of every pair of
// adjacent tokens, per docs/matching.md §1. Duplicates are kept out.
func TitleTokens(title string) []string {
	toks := Tokens(title)
	out := make([]string, 0, 2*len(toks))
	seen := make(map[string]struct{}, 2*len(toks))
	add := func(t string) {
		if _, ok := seen[t]; !ok {
			seen[t] = struct{}{}
			out = append(out, t)
		}
	}
	for i, t := range toks {
		add(t)
		if i > 0 {
			add(toks[i-1] + t)
		}
	}
	return out
}

// Key normalises a location, company or tag per docs/matching.md §1: lower-case,
// runs of white space collapsed to one space, white space trimmed around
// each comma and at both ends, empty comma-separated components dropped.
func Key(s string) string {
	return strings.Join(KeyComponents(s), ",")
}

// KeyComponents is Key split on its commas; it never holds an empty string.
func KeyComponents(s string) []string {
	var comps []string
	for _, part := range strings.Split(s, ",") {
		c := strings.Join(strings.FieldsFunc(lowerRunes(part), unicode.IsSpace), " ")
		if c != "" {
			comps = append(comps, c)
		}
	}
	return comps
}

// lowerRunes applies unicode.ToLower to each rune, as docs/matching.md says
// (strings.ToLower has special cases this contract does not want).
func lowerRunes(s string) string {
	return strings.Map(unicode.ToLower, s)
}
