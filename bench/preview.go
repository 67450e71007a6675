package bench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jobalert/jobalert/internal/workload"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/preview"
)

// Preview implements `jobalert bench preview [--jobs N] [--filters N]
// [--seed S] [--scan]`: it fills a preview.Recent with N generated jobs
// spread over the last 30 days (a sixth of them with sponsorship unknown,
// a sixth "no"), times one preview of each of the generated filters, and
// prints p50, p99 and the largest time; with --scan, the same filters by a
// plain loop over every job (matcher.Compiled.Matches), the baseline, in
// the same run, and the speed-up.
func Preview(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench preview", flag.ContinueOnError)
	fs.SetOutput(stdout)
	nJobs := fs.Int("jobs", 100_000, "recent jobs held")
	nFilters := fs.Int("filters", 1000, "random filters previewed")
	seed := fs.Uint64("seed", 1, "workload seed")
	scan := fs.Bool("scan", false, "also time a plain loop over every job, the baseline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nJobs < 1 || *nFilters < 1 {
		return fmt.Errorf("bench preview: --jobs and --filters must be at least 1")
	}
	g, err := workload.NewGenerator("popular", *seed)
	if err != nil {
		return err
	}
	now := time.Now()
	r := rand.New(rand.NewPCG(*seed, 2))
	recent := preview.New()
	jobs := make([]matcher.Job, *nJobs)
	start := time.Now()
	for i := range jobs {
		j := g.Job(i)
		j.ID = fmt.Sprintf("job-%d", i)
		j.PostedAt = now.Add(-time.Duration(r.Int64N(int64(preview.Horizon))))
		switch r.IntN(6) {
		case 0:
			j.VisaTypes, j.VisaSponsorship = nil, matcher.SponsorshipUnknown
		case 1:
			j.VisaSponsorship = matcher.SponsorshipNo
		}
		jobs[i] = j
		recent.Put(&jobs[i], now)
	}
	fmt.Fprintf(stdout, "loaded %d jobs in %v\n", *nJobs, time.Since(start).Round(time.Millisecond))
	filters := make([]matcher.Filter, *nFilters)
	for i := range filters {
		filters[i] = g.Filter(i).Filter
		filters[i].IncludeUnknownVisa = r.IntN(4) == 0
	}

	lat := make([]time.Duration, len(filters))
	matches := 0
	for i, f := range filters {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := time.Now()
		res, err := recent.Preview(f, now)
		lat[i] = time.Since(t)
		if err != nil {
			return fmt.Errorf("bench preview: filter %d: %w", i, err)
		}
		matches += res.Last30Days
	}
	p50, p99, worst := percentiles(lat)
	fmt.Fprintf(stdout, "indexed: p50 %v p99 %v max %v\n", p50, p99, worst)
	result := fmt.Sprintf("RESULT jobs=%d filters=%d p50_us=%d p99_us=%d max_us=%d matches_per_filter=%.1f",
		*nJobs, *nFilters, p50.Microseconds(), p99.Microseconds(), worst.Microseconds(), float64(matches)/float64(len(filters)))
	if *scan {
		prepared := make([]*matcher.PreparedJob, len(jobs))
		for i := range jobs {
			prepared[i] = matcher.Prepare(&jobs[i])
		}
		base := make([]time.Duration, len(filters))
		for i, f := range filters {
			if err := ctx.Err(); err != nil {
				return err
			}
			t := time.Now()
			c, err := matcher.Compile(f)
			if err != nil {
				return err
			}
			n := 0
			for _, p := range prepared {
				if c.Matches(p) {
					n++
				}
			}
			base[i] = time.Since(t)
		}
		b50, b99, bworst := percentiles(base)
		fmt.Fprintf(stdout, "scan (baseline): p50 %v p99 %v max %v\n", b50, b99, bworst)
		result += fmt.Sprintf(" scan_p50_us=%d scan_p99_us=%d speedup_p99=%.1f", b50.Microseconds(), b99.Microseconds(),
			float64(b99)/float64(max(p99, time.Microsecond)))
	}
	fmt.Fprintln(stdout, result)
	return nil
}

func percentiles(lat []time.Duration) (p50, p99, worst time.Duration) {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100], s[len(s)-1]
}
