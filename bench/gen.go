package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/jobalert/jobalert/internal/workload"
	"github.com/jobalert/jobalert/matcher"
)

// Gen implements `jobalert bench gen --filters N --jobs M --seed S --out DIR
// [--profile popular|sparse]`: it writes DIR/filters.jsonl (one
// {"id":"f123",...filter fields} a line) and DIR/jobs.jsonl (one job event
// body a line) drawn from the job-board distributions documented in
// docs/benchmarks.md. The same arguments give the same files.
func Gen(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench gen", flag.ContinueOnError)
	fs.SetOutput(stdout)
	nFilters := fs.Int("filters", 100_000, "number of saved filters")
	nJobs := fs.Int("jobs", 1_000, "number of job events")
	seed := fs.Uint64("seed", 1, "random seed")
	out := fs.String("out", "", "output directory (required)")
	profile := fs.String("profile", "popular", "workload: popular (thousands of matches a job at 1M filters) or sparse (tens)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("bench gen: --out is required")
	}
	if *nFilters < 0 || *nJobs < 0 {
		return errors.New("bench gen: --filters and --jobs must be ≥ 0")
	}
	g, err := workload.NewGenerator(*profile, *seed)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("bench gen: %w", err)
	}
	start := time.Now()
	if err := writeJSONL(ctx, filepath.Join(*out, "filters.jsonl"), *nFilters, func(i int) any { return g.Filter(i) }); err != nil {
		return err
	}
	if err := writeJSONL(ctx, filepath.Join(*out, "jobs.jsonl"), *nJobs, func(i int) any { return g.Job(i) }); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %d filters and %d jobs (profile %s, seed %d) to %s in %s\n",
		*nFilters, *nJobs, *profile, *seed, *out, time.Since(start).Round(time.Millisecond))
	return err
}

func writeJSONL(ctx context.Context, path string, n int, next func(int) any) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench gen: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("bench gen: %w", cerr)
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	for i := range n {
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := enc.Encode(next(i)); err != nil {
			return fmt.Errorf("bench gen: %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("bench gen: %s: %w", path, err)
	}
	return nil
}

// FilterLine is one line of a filters file: a filter and its id.
type FilterLine = matcher.Entry
