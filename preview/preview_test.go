package preview_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/workload"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/preview"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// recentJobs returns n generated jobs spread over the last 40 days, some
// with a sponsorship stated, each with its time.
func recentJobs(tb testing.TB, n int, seed uint64) []matcher.Job {
	tb.Helper()
	g, err := workload.NewGenerator("popular", seed)
	if err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 99))
	jobs := make([]matcher.Job, n)
	for i := range jobs {
		j := g.Job(i)
		j.ID = fmt.Sprintf("j%d", i)
		j.PostedAt = now.Add(-time.Duration(r.Int64N(int64(40 * 24 * time.Hour))))
		switch r.IntN(6) {
		case 0:
			j.VisaSponsorship, j.VisaTypes = "unknown", nil
		case 1:
			j.VisaSponsorship = "no"
		case 2:
			j.VisaTypes = nil
		}
		jobs[i] = j
	}
	return jobs
}

// want is the preview by definition: every job, Compiled.Matches.
func want(t *testing.T, jobs []matcher.Job, prepared []*matcher.PreparedJob, f matcher.Filter) (last7, last30 int, newest []string) {
	t.Helper()
	c, err := matcher.Compile(f)
	if err != nil {
		t.Fatal(err)
	}
	type hit struct {
		id string
		at time.Time
	}
	var hits []hit
	for i := range jobs {
		j := &jobs[i]
		if j.PostedAt.Before(now.Add(-preview.Horizon)) || !c.Matches(prepared[i]) {
			continue
		}
		last30++
		if !j.PostedAt.Before(now.Add(-preview.Week)) {
			last7++
		}
		hits = append(hits, hit{j.ID, j.PostedAt.Truncate(time.Second)})
	}
	sort.SliceStable(hits, func(a, b int) bool { return hits[a].at.After(hits[b].at) })
	for _, h := range hits[:min(len(hits), preview.NewestLimit)] {
		newest = append(newest, h.at.Format(time.RFC3339))
	}
	return last7, last30, newest
}

// TestPreviewAgreesWithMatcher puts generated jobs in (with replacements
// and removals) and checks the preview of generated and hand-made filters
// against a plain scan with matcher.Compiled.Matches.
func TestPreviewAgreesWithMatcher(t *testing.T) {
	for seed := range uint64(4) {
		jobs := recentJobs(t, 3000, seed)
		r := preview.New()
		for i := range jobs {
			r.Put(&jobs[i], now)
		}
		// Replace a tenth of them, remove another tenth.
		rng := rand.New(rand.NewPCG(seed, 1))
		for range 300 {
			k := rng.IntN(len(jobs))
			jobs[k].Title = "Senior " + jobs[k].Title
			r.Put(&jobs[k], now)
		}
		var kept []matcher.Job
		for i := range jobs {
			if rng.IntN(10) == 0 {
				r.Remove(jobs[i].ID)
				continue
			}
			kept = append(kept, jobs[i])
		}
		if r.Len() != len(kept) {
			t.Fatalf("Len: got %d want %d", r.Len(), len(kept))
		}
		g, err := workload.NewGenerator("popular", seed+10)
		if err != nil {
			t.Fatal(err)
		}
		filters := []matcher.Filter{
			{Companies: []string{kept[0].Company, kept[1].Company}},
			{Tags: kept[2].Tags},
			{VisaTypes: []string{"H-1B"}, IncludeUnknownVisa: true},
			{VisaTypes: []string{"TN", "E-3"}},
			{Locations: []string{"remote"}},
			{Locations: []string{"WA", "Austin, TX"}, MinSalary: 120000},
			{Seniority: []string{"senior"}},
			{ExcludeCompanies: []string{kept[0].Company}},
		}
		for i := range 300 {
			e := g.Filter(i)
			if rng.IntN(4) == 0 {
				e.IncludeUnknownVisa = true
			}
			filters = append(filters, e.Filter)
		}
		prepared := make([]*matcher.PreparedJob, len(kept))
		for i := range kept {
			prepared[i] = matcher.Prepare(&kept[i])
		}
		for _, f := range filters {
			got, err := r.Preview(f, now)
			if err != nil {
				t.Fatal(err)
			}
			w7, w30, wNewest := want(t, kept, prepared, f)
			var gNewest []string
			for _, it := range got.Newest {
				gNewest = append(gNewest, it.PostedAt.Format(time.RFC3339))
			}
			if got.Last7Days != w7 || got.Last30Days != w30 || !slices.Equal(gNewest, wNewest) {
				t.Fatalf("seed %d filter %+v: got %d/%d %v want %d/%d %v", seed, f, got.Last7Days, got.Last30Days, gNewest, w7, w30, wNewest)
			}
		}
	}
}

func TestPreviewExpireAndBadFilter(t *testing.T) {
	r := preview.New()
	r.Put(&matcher.Job{ID: "old", Title: "Go Engineer", Company: "A", PostedAt: now.Add(-31 * 24 * time.Hour)}, now)
	r.Put(&matcher.Job{ID: "new", Title: "Go Engineer", Company: "A", PostedAt: now.Add(time.Hour)}, now) // future: seen time
	r.Expire(now)
	if r.Len() != 1 {
		t.Fatalf("after Expire: got %d jobs want 1", r.Len())
	}
	got, err := r.Preview(matcher.Filter{Keywords: "go"}, now)
	if err != nil || got.Last7Days != 1 || len(got.Newest) != 1 || !got.Newest[0].PostedAt.Equal(now) {
		t.Errorf("preview: got %+v, %v want one job posted now", got, err)
	}
	if _, err := r.Preview(matcher.Filter{VisaTypes: []string{"H-2A"}}, now); err == nil {
		t.Error("unknown visa: got no error")
	}
}

// BenchmarkPreview times one preview at 100,000 recent jobs over 1,000
// generated filters, and reports p50 and p99; docs/benchmarks.md has the
// figures. "scan" is the plain loop over every job, the baseline.
func BenchmarkPreview(b *testing.B) {
	jobs := recentJobs(b, 100_000, 1)
	r := preview.New()
	for i := range jobs {
		r.Put(&jobs[i], now)
	}
	g, err := workload.NewGenerator("popular", 7)
	if err != nil {
		b.Fatal(err)
	}
	filters := make([]matcher.Filter, 1000)
	for i := range filters {
		filters[i] = g.Filter(i).Filter
	}
	b.Run("indexed", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			if _, err := r.Preview(filters[i%len(filters)], now); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})
	b.Run("scan", func(b *testing.B) {
		prepared := make([]*matcher.PreparedJob, len(jobs))
		for i := range jobs {
			prepared[i] = matcher.Prepare(&jobs[i])
		}
		lat := make([]time.Duration, 0, b.N)
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			c, _ := matcher.Compile(filters[i%len(filters)])
			n := 0
			for _, p := range prepared {
				if c.Matches(p) {
					n++
				}
			}
			lat = append(lat, time.Since(t0))
		}
		report(b, lat)
	})
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_us")
}

// A repost put with the aliases of its role is the job it reposts: it
// counts once, shows the newest posting, and its close removes the job.
func TestPreviewCollapsesReposts(t *testing.T) {
	r := preview.New()
	r.PutAliased(&matcher.Job{ID: "a", Title: "Go Engineer", Company: "Acme", URL: "https://x/a", PostedAt: now.Add(-48 * time.Hour)}, now, []string{"role:acme/go"})
	r.PutAliased(&matcher.Job{ID: "b", Title: "Go Engineer", Company: "Acme", URL: "https://x/b", PostedAt: now.Add(-time.Hour)}, now, []string{"role:acme/go"})
	r.PutAliased(&matcher.Job{ID: "c", Title: "Go Developer", Company: "Globex", PostedAt: now.Add(-time.Hour)}, now, []string{"role:globex/go"})
	got, err := r.Preview(matcher.Filter{Keywords: "go"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Last7Days != 2 || r.Len() != 2 {
		t.Fatalf("after a repost: got %d jobs (%d held) want 2", got.Last7Days, r.Len())
	}
	for _, it := range got.Newest {
		if it.Company == "Acme" && it.URL != "https://x/b" {
			t.Errorf("the reposted job: got url %q want the newest posting's", it.URL)
		}
	}
	r.Remove("b") // the repost's own id closes the job
	if r.Len() != 1 {
		t.Errorf("after closing the repost's id: got %d jobs held want 1", r.Len())
	}
}
