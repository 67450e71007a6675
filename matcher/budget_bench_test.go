package matcher

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The filter budget's benchmark (docs/benchmarks.md, "Filter budget"):
// 10,000 typical filters against 10,000 of the most expensive filters the
// budget accepts, each set in its own index, every filter of every set one
// that each benchmark job reaches and checks in full, and matches (the
// finding's scenario: a cost every job pays; a filter that a job never
// reaches costs it nothing, whatever its size). The most expensive filter
// is not the same for the two measures, so there are two worst sets: the
// largest (every counted field at its cap: the most index bytes), and the
// slowest (the same without companies, so that it is posted under its
// locations' components, which the job has: the job reaches it through
// several lists).

// budgetTitleWords are the words of every benchmark job's title (in a
// different order each), budgetJobTags its tags.
var (
	budgetTitleWords = []string{"senior", "software", "engineer", "ii", "backend", "platform", "go", "python",
		"kubernetes", "aws", "data", "infrastructure"}
	budgetJobTags = []string{"go", "python", "aws", "kubernetes"}
	// Filter locations a job in "Seattle, WA, US" and "Remote, US" (remote)
	// is in, and two-component runs of its components it is not in.
	budgetLocsIn  = []string{"Seattle, WA", "WA", "Seattle", "Remote", "US", "WA, US", "Seattle, WA, US", "Remote, US"}
	budgetLocsOut = []string{"WA, Seattle", "US, WA", "US, Remote", "Seattle, US", "US, Seattle", "Seattle, Remote",
		"Remote, Seattle", "WA, Remote", "Remote, WA"}
)

// budgetJobs returns n jobs that every filter of both sets matches.
func budgetJobs(n int) []Job {
	r := rand.New(rand.NewPCG(1, 2))
	jobs := make([]Job, n)
	for i := range jobs {
		words := append([]string(nil), budgetTitleWords...)
		r.Shuffle(len(words), func(a, b int) { words[a], words[b] = words[b], words[a] })
		jobs[i] = Job{
			ID: fmt.Sprintf("j%d", i), Title: strings.Join(words, " "), Company: "Acme",
			Locations: []string{"Seattle, WA, US", "Remote, US"}, Workplace: "remote",
			VisaTypes: []string{"H-1B", "TN"}, Seniority: "senior", Tags: budgetJobTags,
			Salary: &Salary{Min: 150_000, Max: 210_000},
		}
	}
	return jobs
}

// typicalFilter is the typical filter of docs/matching.md: two keyword
// tokens, one or two visa types, one or two locations. Here the keywords
// are two of the job's title words and the first location one the job is
// in; the second, when there is one, is a city elsewhere (one of 200).
// Filter i of a set is a distinct combination, so that no two share a group.
func typicalFilter(i int) Filter {
	nw, nl := len(budgetTitleWords), len(budgetLocsIn)
	a, b := 0, i%(nw*(nw-1)/2)
	for b >= nw-1-a { // the pair of index b
		b -= nw - 1 - a
		a++
	}
	b += a + 1
	i /= nw * (nw - 1) / 2
	f := Filter{Keywords: budgetTitleWords[a] + " " + budgetTitleWords[b], Locations: []string{budgetLocsIn[i%nl]}}
	i /= nl
	if i%201 > 0 {
		f.Locations = append(f.Locations, fmt.Sprintf("Town%d, ST", i%201))
	}
	f.VisaTypes = [][]string{{"H-1B"}, {"H-1B", "TN"}, {"TN", "O-1"}}[i%3]
	return f
}

// worstFilter is the most expensive filter the budget accepts: every
// counted field at its cap (companies only if withCompanies), drawn so that
// a job checks every value.
// Keywords: title words (all present). Exclude entries: one word each,
// that no title has (the slowest form: one-token entries took about 10%
// longer to check than as many tokens in entries of a title word and such
// a word).
// Locations: runs of the job's components, all but one not contiguous in
// the job, so that each is compared with both job locations. Companies,
// excluded companies and tags: as many as the caps allow, with the job's
// company and one of its tags among them.
func worstFilter(r *rand.Rand, withCompanies bool) Filter {
	var f Filter
	kw := r.Perm(len(budgetTitleWords))[:MaxKeywordTokens]
	for _, k := range kw {
		f.Keywords += budgetTitleWords[k] + " "
	}
	for _, k := range r.Perm(2000)[:MaxExcludeTokens] {
		f.ExcludeKeywords = append(f.ExcludeKeywords, fmt.Sprintf("zq%d", k))
	}
	f.Locations = []string{"Seattle, WA"}
	for _, k := range r.Perm(len(budgetLocsOut))[:MaxLocations-1] {
		f.Locations = append(f.Locations, budgetLocsOut[k])
	}
	co := r.Perm(500)
	if withCompanies {
		for _, k := range co[:MaxCompanies-1] {
			f.Companies = append(f.Companies, fmt.Sprintf("Company %d", k))
		}
		f.Companies = append(f.Companies, "Acme")
	}
	for _, k := range co[MaxCompanies : MaxCompanies+MaxExcludeCompanies] {
		f.ExcludeCompanies = append(f.ExcludeCompanies, fmt.Sprintf("Company %d", k))
	}
	for _, k := range r.Perm(200)[:MaxTags-1] {
		f.Tags = append(f.Tags, fmt.Sprintf("tag%d", k))
	}
	f.Tags = append(f.Tags, budgetJobTags[r.IntN(len(budgetJobTags))])
	f.VisaTypes = VisaCodes()
	f.Seniority = SeniorityLevels()
	f.MinSalary = 100_000
	return f
}

// buildBudgetIndex builds an index of n filters and returns it and its
// live heap bytes per filter (the filters' ids included).
func buildBudgetIndex(n int, filter func(i int) Filter) (*Index, float64) {
	runtime.GC()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ix := NewIndex()
	ix.mu.Lock()
	for _, w := range budgetTitleWords { // as in a running index: title words are common
		ix.dict.intern(w)
	}
	ix.mu.Unlock()
	entries := make([]Entry, n)
	for i := range entries {
		entries[i] = Entry{ID: fmt.Sprintf("sub_%012d", i), Filter: filter(i)}
	}
	if errs := ix.AddBatch(entries); len(errs) > 0 {
		panic(errs[0])
	}
	entries = nil
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return ix, float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// worstFilters returns the function of a worst set: worstFilter drawn
// from a fixed seed, filter i on the i-th call.
func worstFilters(withCompanies bool) func(int) Filter {
	r := rand.New(rand.NewPCG(3, 4))
	return func(int) Filter { return worstFilter(r, withCompanies) }
}

// BenchmarkFilterBudget builds an index of 10,000 typical filters and one
// of 10,000 filters of each worst set, and matches each job against all
// three in turn, so that their times are taken under the same load.
// Metrics: live heap bytes per filter of each index, the time a job takes
// in each, and the ratios: the largest of the worst sets' bytes per filter
// over the typical one's, and the largest of their times per job over the
// typical one's.
func BenchmarkFilterBudget(b *testing.B) {
	const n = 10_000
	type set struct {
		name  string
		ix    *Index
		bytes float64
		time  time.Duration
	}
	sets := []*set{{name: "typical"}, {name: "largest"}, {name: "slowest"}}
	sets[0].ix, sets[0].bytes = buildBudgetIndex(n, typicalFilter)
	sets[1].ix, sets[1].bytes = buildBudgetIndex(n, worstFilters(true))
	sets[2].ix, sets[2].bytes = buildBudgetIndex(n, worstFilters(false))
	jobs := budgetJobs(64)
	for _, s := range sets { // the scenario: every filter matches every job
		for k := range jobs {
			if got := len(s.ix.MatchIDs(&jobs[k])); got != n {
				b.Fatalf("%s: job %d matches %d filters, want %d", s.name, k, got, n)
			}
		}
	}
	dst := make([]uint32, 0, n)
	for i := 0; b.Loop(); i++ {
		j := &jobs[i%len(jobs)]
		for _, s := range sets {
			t0 := time.Now()
			dst = s.ix.Match(j, dst[:0])
			s.time += time.Since(t0)
		}
	}
	typ := sets[0]
	bytesRatio, timeRatio := 0.0, 0.0
	for _, s := range sets {
		b.ReportMetric(s.bytes, s.name+"-B/filter")
		b.ReportMetric(float64(s.time.Nanoseconds())/float64(b.N), s.name+"-ns/job")
		bytesRatio = max(bytesRatio, s.bytes/typ.bytes)
		timeRatio = max(timeRatio, float64(s.time)/float64(typ.time))
	}
	b.ReportMetric(bytesRatio, "bytes-ratio")
	b.ReportMetric(timeRatio, "time-ratio")
}
