package matcher_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jobalert/jobalert/internal/workload"
	"github.com/jobalert/jobalert/matcher"
)

var long = flag.Bool("matcher.long", false, "run the index property tests with many more cases")

// randWorld draws filters and jobs from small vocabularies full of the
// edges of docs/matching.md, so that random pairs often match and often almost
// match.
type randWorld struct{ r *rand.Rand }

var (
	titleWords = []string{"Backend", "back-end", "Back", "End", "engineer", "Engineer", "Senior", "staff", "II",
		"C++", "c#", "F#", ".NET", "node.js", "Full-Stack", "full", "stack", "fullstack", "Data", "ML", "SRE",
		"DevOps", "developer", "Manager", "product", "h-1b", "Straße", "ÜBER", "über", "日本語", "x-", "-y",
		"a--b", "python", "go", "Go", "remote", "seattle"}
	titleSeps   = []string{" ", " ", " ", "-", "/", ", ", "  ", " - ", ".", "(", ")"}
	locComps    = []string{"Seattle", "WA", "US", "Fresno", "CA", "Toronto", "ON", "Austin", "TX", "remote", "Remote", "New York", "NY", " san  francisco ", "Zürich", "ca"}
	companies   = []string{"Acme", "acme ", "ACME", "Acme, Inc", "acme,inc", "Globex", "Initech", "Ünï Corp", "ünï  corp", "", " ", "Umbrella"}
	tagVals     = []string{"go", "Go", "python", "aws", " ", "", "c++", "C#", "node.js", "ML Ops", "ml  ops"}
	visaVals    = []string{"H-1B", "h1b", "h 1 b", "H1B visa", "H-1B1", "E-3", "tn", "TN Visa", "O-1A", "o1b", "L-1", "l1a", "J-1", "OPT", "f1-opt", "STEM-OPT", "stem_opt", "GREEN-CARD", "gc", "PERM", "eb-2", "EB3"}
	jobVisaVals = append(slices.Clone(visaVals), "bogus", "", "H-2A")
	seniorities = []string{"intern", "Junior", "mid", "SENIOR", "staff", "principal", "manager", "director"}
	workplaces  = []string{"onsite", "hybrid", "remote", "Remote", "REMOTE", "", "weird", "on-site"}
	periods     = []string{"", "year", "Year", "month", "week", "day", "hour", "HOUR", "fortnight"}
	currencies  = []string{"", "", "USD", "usd", "Usd", "EUR", "CAD"}
	minSalaries = []int64{0, -5, 50000, 100000, 150000, 166400, 166401, 200000, 5_000_000_000}
)

func (w randWorld) pick(s []string) string { return s[w.r.IntN(len(s))] }

func (w randWorld) some(s []string, max int) []string {
	n := w.r.IntN(max + 1)
	out := make([]string, n)
	for i := range out {
		out[i] = w.pick(s)
	}
	return out
}

func (w randWorld) text(words int) string {
	var b strings.Builder
	n := 1 + w.r.IntN(words)
	for i := range n {
		if i > 0 {
			b.WriteString(w.pick(titleSeps))
		}
		b.WriteString(w.pick(titleWords))
	}
	return b.String()
}

func (w randWorld) location() string {
	if w.r.IntN(8) == 0 {
		return w.pick([]string{"", " , ", "remote", "Remote", "Seattle,,WA,", "seattle ,  wa"})
	}
	n := 1 + w.r.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = w.pick(locComps)
	}
	return strings.Join(parts, w.pick([]string{",", ", ", " , "}))
}

func (w randWorld) locations(max int) []string {
	n := w.r.IntN(max + 1)
	out := make([]string, n)
	for i := range out {
		out[i] = w.location()
	}
	return out
}

func (w randWorld) filter() matcher.Filter {
	var f matcher.Filter
	for f.Keywords == "" && len(f.VisaTypes)+len(f.Locations)+len(f.Companies)+len(f.Seniority)+len(f.Tags)+len(f.ExcludeKeywords)+len(f.ExcludeCompanies) == 0 && f.MinSalary == 0 {
		if w.r.IntN(4) > 0 {
			f.Keywords = w.text(3)
		}
		if w.r.IntN(4) == 0 {
			f.ExcludeKeywords = []string{w.text(2)}
			if w.r.IntN(3) == 0 {
				f.ExcludeKeywords = append(f.ExcludeKeywords, w.pick([]string{"", " - ", w.text(1)}))
			}
		}
		if w.r.IntN(3) == 0 {
			f.VisaTypes = w.some(visaVals, 3)
			f.IncludeUnknownVisa = w.r.IntN(2) == 0
		}
		if w.r.IntN(2) == 0 {
			f.Locations = w.locations(3)
		}
		if w.r.IntN(3) == 0 {
			f.MinSalary = minSalaries[w.r.IntN(len(minSalaries))]
		}
		if w.r.IntN(5) == 0 {
			f.Companies = w.some(companies, 2)
		}
		if w.r.IntN(6) == 0 {
			f.ExcludeCompanies = w.some(companies, 2)
		}
		if w.r.IntN(4) == 0 {
			f.Seniority = w.some(seniorities, 3)
		}
		if w.r.IntN(5) == 0 {
			f.Tags = w.some(tagVals, 3)
		}
	}
	return f
}

func (w randWorld) job(id int) *matcher.Job {
	j := &matcher.Job{
		ID:        fmt.Sprintf("j%d", id),
		Title:     w.text(5),
		Company:   w.pick(companies),
		Locations: w.locations(3),
		Workplace: w.pick(workplaces),
		VisaTypes: w.some(jobVisaVals, 4),
		Tags:      w.some(tagVals, 4),
	}
	if w.r.IntN(2) == 0 {
		j.Seniority = w.pick(append(seniorities, "", "lead"))
	}
	if w.r.IntN(2) == 0 {
		j.VisaSponsorship = w.pick([]string{"yes", "no", "unknown", "Unknown", "NO", "maybe"})
	}
	if w.r.IntN(4) > 0 {
		s := &matcher.Salary{Currency: w.pick(currencies), Period: w.pick(periods)}
		switch w.r.IntN(4) {
		case 0:
			s.Min = float64(w.r.IntN(200000))
		case 1:
			s.Max = float64(w.r.IntN(200))
		case 2:
			s.Min, s.Max = float64(w.r.IntN(100000)), float64(w.r.IntN(250000))
		case 3:
			s.Min, s.Max = 80, 80.5 // 166,400 and 167,440 a year by the hour
			s.Period = "hour"
		}
		if w.r.IntN(10) == 0 {
			s.Max = -1
		}
		j.Salary = s
	}
	return j
}

func cases(normal, longN int) int {
	if *long {
		return longN
	}
	if testing.Short() {
		return normal / 4
	}
	return normal
}

// TestIndexMatchesReference adds, replaces and removes random filters in an
// Index and a Reference alike and compares their answers on random jobs.
func TestIndexMatchesReference(t *testing.T) {
	rounds := cases(6, 60)
	for seed := range rounds {
		w := randWorld{rand.New(rand.NewPCG(uint64(seed), 7))}
		ix, ref := matcher.NewIndex(), matcher.NewReference()
		n := 300 + w.r.IntN(700)
		for i := range n {
			id := fmt.Sprintf("f%d", w.r.IntN(n))
			f := w.filter()
			errI, errR := ix.Add(id, f), ref.Add(id, f)
			if (errI == nil) != (errR == nil) {
				t.Fatalf("Add(%q, %+v): got %v want %v", id, f, errI, errR)
			}
			if i%5 == 0 {
				id := fmt.Sprintf("f%d", w.r.IntN(n))
				if got, want := ix.Remove(id), ref.Remove(id); got != want {
					t.Fatalf("Remove(%q): got %v want %v", id, got, want)
				}
			}
		}
		if got, want := ix.Len(), ref.Len(); got != want {
			t.Fatalf("Len: got %d want %d", got, want)
		}
		for k := range 300 {
			j := w.job(k)
			got, want := ix.MatchIDs(j), ref.MatchIDs(j)
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d job %+v (salary %+v):\ngot  %v\nwant %v", seed, j, j.Salary, got, want)
			}
		}
	}
}

// TestIndexConcurrent matches while other goroutines add, update and remove
// filters. Filters nobody touches must be reported exactly as Reference
// reports them throughout; at the end both must agree on everything.
func TestIndexConcurrent(t *testing.T) {
	w := randWorld{rand.New(rand.NewPCG(42, 42))}
	ix, stable := matcher.NewIndex(), matcher.NewReference()
	for i := range 600 {
		f := w.filter()
		id := fmt.Sprintf("s%d", i)
		if err := ix.Add(id, f); err != nil {
			continue
		}
		if err := stable.Add(id, f); err != nil {
			t.Fatal(err)
		}
	}
	jobs := make([]*matcher.Job, 200)
	for i := range jobs {
		jobs[i] = w.job(i)
	}
	ops := cases(4000, 40000)
	filters := make([]matcher.Filter, 500)
	for i := range filters {
		filters[i] = w.filter()
	}

	var wg sync.WaitGroup
	var stop atomic.Bool
	var mu sync.Mutex
	churn := map[string]matcher.Filter{}
	for wr := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(wr), 1))
			for i := range ops {
				id := fmt.Sprintf("c%d", r.IntN(300))
				mu.Lock() // keeps churn in step with the index
				switch r.IntN(4) {
				case 0:
					if ix.Remove(id) {
						delete(churn, id)
					}
				case 1:
					f := filters[r.IntN(len(filters))]
					if ix.Update(id, f) == nil {
						churn[id] = f
					}
				default:
					f := filters[(i+r.IntN(7))%len(filters)]
					if ix.Add(id, f) == nil {
						churn[id] = f
					}
				}
				mu.Unlock()
			}
		}()
	}
	errs := make(chan string, 2)
	var readers sync.WaitGroup
	for rd := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var dst []uint32
			var ids []string
			for k := 0; !stop.Load(); k++ {
				j := jobs[(k+rd*37)%len(jobs)]
				dst = ix.Match(j, dst[:0])
				ids = ix.IDs(dst, ids[:0])
				var got []string
				for _, id := range ids {
					if strings.HasPrefix(id, "s") {
						got = append(got, id)
					}
				}
				slices.Sort(got)
				if want := stable.MatchIDs(j); !slices.Equal(got, want) {
					errs <- fmt.Sprintf("job %s during churn: got %v want %v", j.ID, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	readers.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}

	ref := matcher.NewReference()
	for id, f := range churn {
		if err := ref.Add(id, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, j := range jobs {
		var want []string
		want = append(want, ref.MatchIDs(j)...)
		want = append(want, stable.MatchIDs(j)...)
		slices.Sort(want)
		if got := ix.MatchIDs(j); !slices.Equal(got, want) {
			t.Fatalf("job %s after churn: got %v want %v", j.ID, got, want)
		}
	}
	if got, want := ix.Len(), ref.Len()+stable.Len(); got != want {
		t.Fatalf("Len: got %d want %d", got, want)
	}
}

// TestIndexSlotsOfRemovedFilters holds slots across the removal of their
// filters and the reuse of their storage: they must resolve to nothing,
// never to another filter's id.
func TestIndexSlotsOfRemovedFilters(t *testing.T) {
	ix := matcher.NewIndex()
	j := &matcher.Job{ID: "j", Title: "Backend Engineer", Company: "Acme"}
	const n = 6000
	for i := range n {
		if err := ix.Add(fmt.Sprintf("old%d", i), matcher.Filter{Keywords: "backend"}); err != nil {
			t.Fatal(err)
		}
	}
	held := ix.Match(j, nil)
	if len(held) != n {
		t.Fatalf("matches: got %d want %d", len(held), n)
	}
	for round := range 3 {
		for i := range n {
			ix.Remove(fmt.Sprintf("old%d", i))
			if err := ix.Add(fmt.Sprintf("new%d.%d", round, i), matcher.Filter{Keywords: "backend"}); err != nil {
				t.Fatal(err)
			}
			ix.Remove(fmt.Sprintf("new%d.%d", round, i))
			if err := ix.Add(fmt.Sprintf("old%d", i), matcher.Filter{Keywords: "backend"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every "old" filter was removed and re-added under a new slot: the
	// held slots name none of them, and nothing else.
	if got := ix.IDs(held, nil); len(got) != 0 {
		t.Fatalf("IDs of held slots: got %d ids (%v...) want none", len(got), got[:min(5, len(got))])
	}
	if got := ix.MatchIDs(j); len(got) != n {
		t.Fatalf("MatchIDs: got %d want %d", len(got), n)
	}
}

// TestIndexUpdate checks Update's contract: it replaces, and refuses an
// unknown id or an invalid filter, leaving the old filter in place.
func TestIndexUpdate(t *testing.T) {
	ix := matcher.NewIndex()
	j := &matcher.Job{ID: "j", Title: "Backend Engineer", Company: "Acme"}
	if err := ix.Update("nope", matcher.Filter{Keywords: "x"}); err == nil {
		t.Fatalf("Update of an unknown id: got nil want an error")
	}
	if err := ix.Add("a", matcher.Filter{Keywords: "frontend"}); err != nil {
		t.Fatal(err)
	}
	if err := ix.Update("a", matcher.Filter{Keywords: "backend"}); err != nil {
		t.Fatal(err)
	}
	if got := ix.MatchIDs(j); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after Update: got %v want [a]", got)
	}
	if err := ix.Update("a", matcher.Filter{Keywords: "backend", VisaTypes: []string{"H-2A"}}); err == nil {
		t.Fatalf("Update with an unknown visa: got nil want an error")
	}
	if got := ix.MatchIDs(j); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after a refused Update: got %v want [a]", got)
	}
	if got := ix.Len(); got != 1 {
		t.Fatalf("Len: got %d want 1", got)
	}
}

// TestIndexMatchAllocations checks that Match allocates nothing once dst
// has the capacity.
func TestIndexMatchAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	w := randWorld{rand.New(rand.NewPCG(3, 3))}
	ix := matcher.NewIndex()
	for i := range 2000 {
		_ = ix.Add(fmt.Sprintf("f%d", i), w.filter())
	}
	jobs := make([]*matcher.Job, 50)
	for i := range jobs {
		jobs[i] = w.job(i)
	}
	dst := make([]uint32, 0, 4096)
	for _, j := range jobs { // warm the scratch buffers
		dst = ix.Match(j, dst[:0])
	}
	k := 0
	allocs := testing.AllocsPerRun(200, func() {
		dst = ix.Match(jobs[k%len(jobs)], dst[:0])
		k++
	})
	if allocs != 0 {
		t.Fatalf("allocations per Match: got %v want 0", allocs)
	}
}

// BenchmarkMatch times Match on the generated popular workload (see
// workload.Generator) at 10k, 100k and, without -short, 1M filters. Set
// -matcher.profile=sparse for the sparse one.
func BenchmarkMatch(b *testing.B) {
	sizes := []int{10_000, 100_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:2]
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("filters=%s", sizeName(n)), func(b *testing.B) {
			g, err := workload.NewGenerator(*profile, 1)
			if err != nil {
				b.Fatal(err)
			}
			ix := matcher.NewIndex()
			entries := make([]matcher.Entry, n)
			for i := range entries {
				entries[i] = g.Filter(i)
			}
			if errs := ix.AddBatch(entries); len(errs) > 0 {
				b.Fatal(errs[0])
			}
			entries = nil
			jobs := make([]matcher.Job, 1000)
			for i := range jobs {
				jobs[i] = g.Job(i)
			}
			dst := make([]uint32, 0, 1<<16)
			matches := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				dst = ix.Match(&jobs[i%len(jobs)], dst[:0])
				matches += len(dst)
			}
			b.ReportMetric(float64(matches)/float64(b.N), "matches/op")
		})
	}
}

var profile = flag.String("matcher.profile", "popular", "workload profile of BenchmarkMatch: popular or sparse")

func sizeName(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}

// TestIndexBatchMatchesReference builds indexes with AddBatch (into an
// empty index and into one holding filters, with repeated ids and invalid
// filters in the batch), changes them with Add and Remove, and compares
// them with Reference throughout.
func TestIndexBatchMatchesReference(t *testing.T) {
	rounds := cases(6, 60)
	for seed := range rounds {
		w := randWorld{rand.New(rand.NewPCG(uint64(seed), 11))}
		ix, ref := matcher.NewIndex(), matcher.NewReference()
		n := 300 + w.r.IntN(3000)
		if seed%2 == 1 { // a non-empty index first
			for range 200 {
				id := fmt.Sprintf("f%d", w.r.IntN(n))
				f := w.filter()
				if (ix.Add(id, f) == nil) != (ref.Add(id, f) == nil) {
					t.Fatalf("Add(%q) disagrees", id)
				}
			}
		}
		entries := make([]matcher.Entry, n)
		wantBad := map[int]bool{}
		for i := range entries {
			f := w.filter()
			if w.r.IntN(50) == 0 {
				f.VisaTypes = append(f.VisaTypes, "H-2A")
			}
			entries[i] = matcher.Entry{ID: fmt.Sprintf("f%d", w.r.IntN(n)), Filter: f}
			if ref.Add(entries[i].ID, f) != nil {
				wantBad[i] = true
			}
		}
		errs := ix.AddBatch(entries)
		if len(errs) != len(wantBad) {
			t.Fatalf("seed %d: AddBatch left out %d entries, want %d", seed, len(errs), len(wantBad))
		}
		for _, e := range errs {
			if !wantBad[e.Index] || e.ID != entries[e.Index].ID {
				t.Fatalf("seed %d: AddBatch left out entry %d (%v)", seed, e.Index, e)
			}
		}
		check := func(stage string) {
			t.Helper()
			if got, want := ix.Len(), ref.Len(); got != want {
				t.Fatalf("seed %d %s: Len got %d want %d", seed, stage, got, want)
			}
			for k := range 200 {
				j := w.job(k)
				if got, want := ix.MatchIDs(j), ref.MatchIDs(j); !slices.Equal(got, want) {
					t.Fatalf("seed %d %s: job %+v:\ngot  %v\nwant %v", seed, stage, j, got, want)
				}
			}
		}
		check("after AddBatch")
		for i := range 400 {
			id := fmt.Sprintf("f%d", w.r.IntN(n))
			if i%3 == 0 {
				if got, want := ix.Remove(id), ref.Remove(id); got != want {
					t.Fatalf("Remove(%q): got %v want %v", id, got, want)
				}
				continue
			}
			f := w.filter()
			if (ix.Add(id, f) == nil) != (ref.Add(id, f) == nil) {
				t.Fatalf("Add(%q) disagrees", id)
			}
		}
		check("after changes")
	}
}

// TestIndexBatchGeneratedWorkload builds the generated workloads both
// ways and compares them with Reference.
func TestIndexBatchGeneratedWorkload(t *testing.T) {
	for _, prof := range []string{"popular", "sparse"} {
		g, err := workload.NewGenerator(prof, 5)
		if err != nil {
			t.Fatal(err)
		}
		n := 20000
		if testing.Short() {
			n = 5000
		}
		entries := make([]matcher.Entry, n)
		ref, one := matcher.NewReference(), matcher.NewIndex()
		for i := range entries {
			f := g.Filter(i)
			entries[i] = matcher.Entry{ID: f.ID, Filter: f.Filter}
			if err := ref.Add(f.ID, f.Filter); err != nil {
				t.Fatal(err)
			}
			if err := one.Add(f.ID, f.Filter); err != nil {
				t.Fatal(err)
			}
		}
		ix := matcher.NewIndex()
		if errs := ix.AddBatch(entries); len(errs) > 0 {
			t.Fatal(errs[0])
		}
		for i := range 100 {
			j := g.Job(i)
			want := ref.MatchIDs(&j)
			if got := ix.MatchIDs(&j); !slices.Equal(got, want) {
				t.Fatalf("%s job %d (AddBatch): got %d ids want %d", prof, i, len(got), len(want))
			}
			if got := one.MatchIDs(&j); !slices.Equal(got, want) {
				t.Fatalf("%s job %d (Add): got %d ids want %d", prof, i, len(got), len(want))
			}
			ids, keys := ix.MatchKeyed(&j)
			if len(keys) != len(ids) {
				t.Fatalf("%s job %d (MatchKeyed): got %d keys for %d ids", prof, i, len(keys), len(ids))
			}
			byKey := map[uint32]string{}
			for k, key := range keys {
				if prev, dup := byKey[key]; dup {
					t.Fatalf("%s job %d (MatchKeyed): key %d for both %s and %s", prof, i, key, prev, ids[k])
				}
				byKey[key] = ids[k]
			}
			slices.Sort(ids)
			if !slices.Equal(ids, want) {
				t.Fatalf("%s job %d (MatchKeyed): got %d ids want %d", prof, i, len(ids), len(want))
			}
		}
	}
}

// TestIndexRunsChurn fills a few large groups (members whose cheap
// clauses repeat, so that they are stored as runs), removes, updates and
// re-adds members while other goroutines match, and compares with
// Reference throughout.
func TestIndexRunsChurn(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	kws := []string{"backend", "backend engineer", "data"}
	visas := [][]string{nil, {"H-1B"}, {"TN"}, {"H-1B", "TN"}}
	sens := [][]string{nil, {"senior"}, {"mid", "senior"}}
	sals := []int64{0, 100000, 150000, 5_000_000_000}
	filter := func() matcher.Filter {
		return matcher.Filter{Keywords: kws[r.IntN(len(kws))], VisaTypes: visas[r.IntN(len(visas))],
			Seniority: sens[r.IntN(len(sens))], MinSalary: sals[r.IntN(len(sals))]}
	}
	jobs := []*matcher.Job{
		{ID: "a", Title: "Senior Backend Engineer", Company: "x", VisaTypes: []string{"H-1B"}, Seniority: "senior", Salary: &matcher.Salary{Max: 160000}},
		{ID: "b", Title: "Backend Engineer", Company: "x", VisaTypes: []string{"TN"}, Seniority: "mid", Salary: &matcher.Salary{Max: 120000}},
		{ID: "c", Title: "Data Backend Engineer", Company: "x", Seniority: "senior"},
		{ID: "d", Title: "Backend Data", Company: "x", VisaTypes: []string{"TN", "H-1B"}, Salary: &matcher.Salary{Max: 9e9}},
	}
	n := cases(4000, 40000)
	for _, batch := range []bool{true, false} {
		ix, ref := matcher.NewIndex(), matcher.NewReference()
		entries := make([]matcher.Entry, n)
		for i := range entries {
			entries[i] = matcher.Entry{ID: fmt.Sprintf("s%d", i), Filter: filter()}
			if err := ref.Add(entries[i].ID, entries[i].Filter); err != nil {
				t.Fatal(err)
			}
			if !batch {
				if err := ix.Add(entries[i].ID, entries[i].Filter); err != nil {
					t.Fatal(err)
				}
			}
		}
		if batch {
			if errs := ix.AddBatch(entries); len(errs) > 0 {
				t.Fatal(errs[0])
			}
		}
		stable := matcher.NewReference() // filters the churn leaves alone: s0..s(n/2-1)
		for i := range n / 2 {
			_ = stable.Add(entries[i].ID, entries[i].Filter)
		}
		var stop atomic.Bool
		errs := make(chan string, 2)
		var readers sync.WaitGroup
		for rd := range 2 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				var dst []uint32
				var ids []string
				for k := 0; !stop.Load(); k++ {
					j := jobs[(k+rd)%len(jobs)]
					dst = ix.Match(j, dst[:0])
					ids = ix.IDs(dst, ids[:0])
					var got []string
					for _, id := range ids {
						var x int
						if _, err := fmt.Sscanf(id, "s%d", &x); err == nil && x < n/2 {
							got = append(got, id)
						}
					}
					slices.Sort(got)
					if want := stable.MatchIDs(j); !slices.Equal(got, want) {
						errs <- fmt.Sprintf("job %s during churn: got %d ids want %d", j.ID, len(got), len(want))
						return
					}
				}
			}()
		}
		for i := range n {
			id := fmt.Sprintf("s%d", n/2+r.IntN(n/2))
			switch i % 3 {
			case 0:
				ix.Remove(id)
				ref.Remove(id)
			case 1:
				f := filter()
				_ = ix.Add(id, f)
				_ = ref.Add(id, f)
			case 2:
				f := filter()
				if (ix.Update(id, f) == nil) != (ref.Remove(id)) {
					t.Fatalf("Update(%q) disagrees", id)
				}
				_ = ref.Add(id, f)
				if ix.Len() != ref.Len() {
					_ = ref.Remove(id)
				}
			}
		}
		stop.Store(true)
		readers.Wait()
		close(errs)
		for e := range errs {
			t.Fatal(e)
		}
		if got, want := ix.Len(), ref.Len(); got != want {
			t.Fatalf("batch=%v Len: got %d want %d", batch, got, want)
		}
		for _, j := range jobs {
			if got, want := ix.MatchIDs(j), ref.MatchIDs(j); !slices.Equal(got, want) {
				t.Fatalf("batch=%v job %s: got %d ids want %d", batch, j.ID, len(got), len(want))
			}
		}
	}
}
