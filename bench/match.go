package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/jobalert/jobalert/matcher"
)

// maxLine bounds a line of a filters or jobs file: a job body is at most
// 64 KiB (consumer.MaxBody), with room to spare.
const maxLine = 1 << 20

// Match implements `jobalert bench match --filters FILTERS.jsonl --jobs
// JOBS.jsonl [--out MATCHES.jsonl] [--reference]` (issue 3). It loads the
// files (reported as load_ms), builds a matcher.Index (build_ms), measures
// the live heap the index holds, times Match one job at a time, and ends
// with a RESULT line. With --reference it also runs matcher.Reference on
// every job, reports its time and the speed-up, and fails on any difference.
func Match(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench match", flag.ContinueOnError)
	fs.SetOutput(stdout)
	filtersPath := fs.String("filters", "", "filters file: one {\"id\":...,filter fields} a line (required)")
	jobsPath := fs.String("jobs", "", "jobs file: one job event body a line (required)")
	outPath := fs.String("out", "", "write {\"job_id\",\"filter_ids\"} a line, in input order")
	withRef := fs.Bool("reference", false, "also run matcher.Reference, report the speed-up, fail on any difference")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed Match loop to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *filtersPath == "" || *jobsPath == "" {
		return errors.New("bench match: --filters and --jobs are required")
	}

	loadStart := time.Now()
	jobs, err := ReadJobs(*jobsPath)
	if err != nil {
		return err
	}
	jobsLoad := time.Since(loadStart)
	base := liveHeap()

	loadStart = time.Now()
	filters, err := ReadFilters(*filtersPath)
	if err != nil {
		return err
	}
	load := jobsLoad + time.Since(loadStart)
	if err := ctx.Err(); err != nil {
		return err
	}

	runtime.GC() // the decoding's garbage is load_ms's, not build_ms's
	buildStart := time.Now()
	ix, err := Build(filters)
	if err != nil {
		return err
	}
	build := time.Since(buildStart)
	nFilters := len(filters)
	filters = nil // the index alone is measured: it owns the id strings now
	heap := liveHeap() - base
	perFilter := 0.0
	if nFilters > 0 {
		perFilter = float64(heap) / float64(nFilters)
	}
	fmt.Fprintf(stdout, "loaded %d filters and %d jobs in %d ms; built the index in %d ms; index heap %.1f MB (%.1f B/filter)\n",
		nFilters, len(jobs), load.Milliseconds(), build.Milliseconds(), float64(heap)/1e6, perFilter)

	// Time Match alone, one job at a time; ids and sorting come after.
	var out *bufio.Writer
	if *outPath != "" {
		f, err := os.Create(*outPath)
		if err != nil {
			return fmt.Errorf("bench match: %w", err)
		}
		defer f.Close()
		out = bufio.NewWriterSize(f, 1<<20)
	}
	dst := make([]uint32, 0, 1<<16)
	for i := range min(len(jobs), 20) { // warm the scratch buffers and dst
		dst = ix.Match(&jobs[i], dst[:0])
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench match: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench match: %w", err)
		}
	}
	times := make([]time.Duration, len(jobs))
	var total, maxMatches int
	var ids []string
	enc := json.NewEncoder(io.Discard)
	if out != nil {
		enc = json.NewEncoder(out)
	}
	for i := range jobs {
		if i%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		t := time.Now()
		dst = ix.Match(&jobs[i], dst[:0])
		times[i] = time.Since(t)
		total += len(dst)
		maxMatches = max(maxMatches, len(dst))
		if out != nil {
			ids = ix.IDs(dst, ids[:0])
			sort.Strings(ids)
			if err := enc.Encode(matchLine{JobID: jobs[i].ID, FilterIDs: nonNil(ids)}); err != nil {
				return fmt.Errorf("bench match: %s: %w", *outPath, err)
			}
		}
	}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if out != nil {
		if err := out.Flush(); err != nil {
			return fmt.Errorf("bench match: %s: %w", *outPath, err)
		}
	}
	st := summarize(times)
	avg := 0.0
	if len(jobs) > 0 {
		avg = float64(total) / float64(len(jobs))
	}
	result := fmt.Sprintf("RESULT filters=%d jobs=%d build_ms=%d heap_bytes_per_filter=%.1f mean_us=%.2f p50_us=%.2f p99_us=%.2f matches=%d avg_matches=%.1f max_matches=%d max_us=%.1f budget_mean_us=%.1f load_ms=%d",
		nFilters, len(jobs), build.Milliseconds(), perFilter, st.mean, st.p50, st.p99, total, avg, maxMatches, st.max, 25+0.025*avg, load.Milliseconds())

	if *withRef {
		refLine, err := compareReference(ctx, stdout, ix, *filtersPath, jobs, st.mean)
		if refLine != "" {
			result += " " + refLine
		}
		if err != nil {
			fmt.Fprintln(stdout, result)
			return err
		}
	}
	_, err = fmt.Fprintln(stdout, result)
	return err
}

type matchLine struct {
	JobID     string   `json:"job_id"`
	FilterIDs []string `json:"filter_ids"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// compareReference builds a Reference from the filters file, times it on
// every job, and compares its answers with the index's.
func compareReference(ctx context.Context, stdout io.Writer, ix *matcher.Index, path string, jobs []matcher.Job, indexMean float64) (string, error) {
	filters, err := ReadFilters(path)
	if err != nil {
		return "", err
	}
	ref := matcher.NewReference()
	for _, f := range filters {
		if err := ref.Add(f.ID, f.Filter); err != nil {
			return "", fmt.Errorf("bench match: reference: %w", err)
		}
	}
	filters = nil
	var refTotal time.Duration
	diffs := 0
	for i := range jobs {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		t := time.Now()
		want := ref.MatchIDs(&jobs[i])
		refTotal += time.Since(t)
		if got := ix.MatchIDs(&jobs[i]); !slices.Equal(got, want) {
			diffs++
			if diffs <= 5 {
				fmt.Fprintf(stdout, "DIFF job %s: index %d ids, reference %d ids; first differences: %s\n",
					jobs[i].ID, len(got), len(want), firstDiffs(got, want, 5))
			}
		}
	}
	refMean := 0.0
	if len(jobs) > 0 {
		refMean = float64(refTotal.Nanoseconds()) / 1e3 / float64(len(jobs))
	}
	speedup := 0.0
	if indexMean > 0 {
		speedup = refMean / indexMean
	}
	line := fmt.Sprintf("ref_mean_us=%.1f speedup=%.0f diffs=%d", refMean, speedup, diffs)
	if diffs > 0 {
		return line, fmt.Errorf("bench match: the index and the reference differ on %d of %d jobs", diffs, len(jobs))
	}
	return line, nil
}

func firstDiffs(got, want []string, n int) string {
	var parts []string
	for _, id := range got {
		if _, ok := slices.BinarySearch(want, id); !ok && len(parts) < n {
			parts = append(parts, "+"+id)
		}
	}
	for _, id := range want {
		if _, ok := slices.BinarySearch(got, id); !ok && len(parts) < n {
			parts = append(parts, "-"+id)
		}
	}
	return strings.Join(parts, " ")
}

type stats struct{ mean, p50, p99, max float64 }

// summarize returns the mean and nearest-rank percentiles in microseconds.
func summarize(d []time.Duration) stats {
	if len(d) == 0 {
		return stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	us := func(x time.Duration) float64 { return float64(x.Nanoseconds()) / 1e3 }
	rank := func(p float64) time.Duration {
		return s[max(0, int(math.Ceil(p*float64(len(s))))-1)]
	}
	return stats{mean: us(sum) / float64(len(s)), p50: us(rank(0.50)), p99: us(rank(0.99)), max: us(s[len(s)-1])}
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// Build builds a new Index from filters with AddBatch (compiling on every
// CPU, grouping the batch as a whole) and fails on the first filter it
// left out.
func Build(filters []FilterLine) (*matcher.Index, error) {
	ix := matcher.NewIndex()
	if errs := ix.AddBatch(filters); len(errs) > 0 {
		return nil, fmt.Errorf("bench match: %w (and %d more)", errs[0], len(errs)-1)
	}
	return ix, nil
}

// ReadFilters reads a filters file as docs/matching.md §7 says: the API's filter
// object plus an id, a line each; visa aliases are canonicalised; an
// unknown field, visa value or seniority, a missing or repeated id is an
// error that names the line. Blank lines are skipped.
func ReadFilters(path string) ([]FilterLine, error) {
	var out []FilterLine
	seen := make(map[string]int)
	err := eachLine(path, func(n int, line []byte) error {
		var f FilterLine
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return err
		}
		if f.ID == "" {
			return errors.New(`missing "id"`)
		}
		if prev, ok := seen[f.ID]; ok {
			return fmt.Errorf("id %q repeats line %d", f.ID, prev)
		}
		seen[f.ID] = n
		for i, v := range f.VisaTypes {
			c, ok := matcher.CanonicalVisa(v)
			if !ok {
				return fmt.Errorf("unknown visa type %q (valid: %s)", v, strings.Join(matcher.VisaCodes(), ", "))
			}
			f.VisaTypes[i] = c
		}
		for _, s := range f.Seniority {
			if !slices.Contains(matcher.SeniorityLevels(), strings.Map(unicode.ToLower, s)) {
				return fmt.Errorf("unknown seniority %q (valid: %s)", s, strings.Join(matcher.SeniorityLevels(), ", "))
			}
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// ReadJobs reads a jobs file: one job event body a line (docs/matching.md §7). A line
// that does not decode or lacks id, title or company is an error that names
// the line; unknown fields are ignored. Blank lines are skipped.
func ReadJobs(path string) ([]matcher.Job, error) {
	var out []matcher.Job
	err := eachLine(path, func(_ int, line []byte) error {
		if len(line) > 64<<10 {
			return errors.New("job body larger than 64 KiB")
		}
		var j matcher.Job
		if err := json.Unmarshal(line, &j); err != nil {
			return err
		}
		var missing []string
		for _, f := range []struct{ name, v string }{{"id", j.ID}, {"title", j.Title}, {"company", j.Company}} {
			if f.v == "" {
				missing = append(missing, f.name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("missing %s", strings.Join(missing, ", "))
		}
		out = append(out, j)
		return nil
	})
	return out, err
}

func eachLine(path string, fn func(n int, line []byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(n, line); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s:%d: %w", path, n+1, err)
	}
	return nil
}
