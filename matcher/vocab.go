package matcher

import (
	"slices"
	"strings"
	"unicode"
)

// visaCodes are the canonical visa codes of docs/matching.md §4, in bit order.
var visaCodes = [...]string{"H-1B", "H-1B1", "E-3", "TN", "O-1", "L-1", "J-1", "OPT", "STEM-OPT", "GREEN-CARD"}

// unknownVisaBit is the visa bit of a job whose sponsorship is unknown and
// of a visa clause with include_unknown_visa (docs/matching.md §4a): the bit
// after the codes', below the index's anyBit.
const unknownVisaBit uint16 = 1 << len(visaCodes)

// visaCodes returns the canonical visa codes of docs/matching.md §4, in bit
// order; a fresh slice each call.
func VisaCodes() []string { return slices.Clone(visaCodes[:]) }

var visaAliases = map[string]int{
	"h1b": 0, "h1bvisa": 0,
	"h1b1": 1,
	"e3":   2,
	"tn":   3, "tnvisa": 3,
	"o1": 4, "o1a": 4, "o1b": 4,
	"l1": 5, "l1a": 5, "l1b": 5,
	"j1":  6,
	"opt": 7, "f1opt": 7,
	"stemopt":   8,
	"greencard": 9, "gc": 9, "perm": 9, "eb2": 9, "eb3": 9,
}

// visaBit returns the bit of a visa value given as a code or an alias, or
// false when it is unknown.
func visaBit(v string) (uint16, bool) {
	k := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' || r == '_' || r == '.' {
			return -1
		}
		return unicode.ToLower(r)
	}, v)
	i, ok := visaAliases[k]
	if !ok {
		return 0, false
	}
	return 1 << i, true
}

// CanonicalVisa returns the canonical code for a visa code or alias
// ("h1b" -> "H-1B"), or false when the value is unknown.
func CanonicalVisa(v string) (string, bool) {
	bit, ok := visaBit(v)
	if !ok {
		return "", false
	}
	for i := range visaCodes {
		if bit == 1<<i {
			return visaCodes[i], true
		}
	}
	return "", false
}

// seniorityLevels are the seniority values of docs/matching.md §6, in bit order.
var seniorityLevels = [...]string{"intern", "junior", "mid", "senior", "staff", "principal", "manager", "director"}

// seniorityLevels returns the seniority values of docs/matching.md §6, in
// bit order; a fresh slice each call.
func SeniorityLevels() []string { return slices.Clone(seniorityLevels[:]) }

// seniorityBit returns the bit of a seniority value compared
// case-insensitively, or false when it is not one of seniorityLevels.
func seniorityBit(s string) (uint8, bool) {
	l := lowerRunes(s)
	for i, v := range seniorityLevels {
		if l == v {
			return 1 << i, true
		}
	}
	return 0, false
}

// Workplaces are the accepted workplace values; onsite is the default.
var Workplaces = []string{"onsite", "hybrid", "remote"}

var periodFactor = map[string]float64{"year": 1, "month": 12, "week": 52, "day": 260, "hour": 2080}
