package matcher_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/matcher"
)

// collapseWorld draws filters whose exclude entries and locations repeat
// each other, hold each other and repeat their own tokens (what the index
// collapses, collapse.go), from small vocabularies, so that jobs often
// match them and often almost do.
type collapseWorld struct{ r *rand.Rand }

var (
	collapseWords = []string{"senior", "Senior", "staff", "engineer", "back-end", "backend", "back", "end", "go", "c++", "lead"}
	collapseComps = []string{"Seattle", "seattle ", "WA", "US", "us", "remote", "Remote", "Austin", "TX", "CA"}
)

func (w collapseWorld) words(sep string, max int, vocab []string) string {
	n := 1 + w.r.IntN(max)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = vocab[w.r.IntN(len(vocab))]
	}
	return strings.Join(parts, sep)
}

func (w collapseWorld) filter() matcher.Filter {
	f := matcher.Filter{Keywords: w.words(" ", 2, collapseWords)}
	if w.r.IntN(4) == 0 {
		f = matcher.Filter{VisaTypes: []string{"H-1B"}}
	}
	for range w.r.IntN(7) {
		if len(f.ExcludeKeywords) > 0 && w.r.IntN(3) == 0 { // a repeat, or a superset, of an earlier entry
			prev := f.ExcludeKeywords[w.r.IntN(len(f.ExcludeKeywords))]
			f.ExcludeKeywords = append(f.ExcludeKeywords, prev+[]string{"", " ", " staff", " " + prev}[w.r.IntN(4)])
			continue
		}
		f.ExcludeKeywords = append(f.ExcludeKeywords, w.words(" ", 4, collapseWords))
	}
	for range w.r.IntN(6) {
		if len(f.Locations) > 0 && w.r.IntN(3) == 0 { // a repeat, or a longer run, of an earlier location
			prev := f.Locations[w.r.IntN(len(f.Locations))]
			f.Locations = append(f.Locations, []string{prev, prev + ", US", "Seattle, " + prev, strings.ToUpper(prev)}[w.r.IntN(4)])
			continue
		}
		f.Locations = append(f.Locations, w.words(", ", 3, collapseComps))
	}
	return f
}

func (w collapseWorld) job(i int) *matcher.Job {
	j := &matcher.Job{ID: fmt.Sprint(i), Title: w.words(" ", 6, collapseWords), Company: "Acme",
		Workplace: []string{"onsite", "remote"}[w.r.IntN(2)], VisaTypes: []string{"H-1B"}}
	for range w.r.IntN(3) {
		j.Locations = append(j.Locations, w.words(", ", 4, collapseComps))
	}
	return j
}

// TestIndexCollapseMatchesReference checks that what the index collapses
// changes no answer: Reference matches the filters as written.
func TestIndexCollapseMatchesReference(t *testing.T) {
	for seed := range cases(8, 80) {
		w := collapseWorld{rand.New(rand.NewPCG(uint64(seed), 13))}
		ix, batch, ref := matcher.NewIndex(), matcher.NewIndex(), matcher.NewReference()
		entries := make([]matcher.Entry, 600)
		for i := range entries {
			entries[i] = matcher.Entry{ID: fmt.Sprintf("f%d", i), Filter: w.filter()}
			if err := ix.Add(entries[i].ID, entries[i].Filter); err != nil {
				t.Fatal(err)
			}
			if err := ref.Add(entries[i].ID, entries[i].Filter); err != nil {
				t.Fatal(err)
			}
		}
		if errs := batch.AddBatch(entries); len(errs) > 0 {
			t.Fatal(errs[0])
		}
		for k := range 300 {
			j := w.job(k)
			want := ref.MatchIDs(j)
			if got := ix.MatchIDs(j); !slices.Equal(got, want) {
				t.Fatalf("seed %d job %+v (Add):\ngot  %v\nwant %v", seed, j, got, want)
			}
			if got := batch.MatchIDs(j); !slices.Equal(got, want) {
				t.Fatalf("seed %d job %+v (AddBatch):\ngot  %v\nwant %v", seed, j, got, want)
			}
		}
	}
}
