package matcher

// Benchmarks on a workload written by `jobalert bench gen` (MSTAT names its
// directory, holding filters.jsonl and jobs.jsonl; without it they skip):
//
//	MSTAT=/tmp/wl/sp1m go test -run '^$' -bench IndexFile -benchtime 1x ./matcher
//
// BenchmarkIndexFileBuild times building the index from the file with
// AddBatch (MSTAT_ADD=1: with Add, one filter at a time) and reports the
// shape of the groups; add -cpuprofile to see where the build's time goes.
// BenchmarkIndexFileMatch times Match over the file's jobs.

import (
	"bufio"
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"testing"
)

type statFilterLine struct {
	ID string `json:"id"`
	Filter
}

// statFile reads MSTAT's filters and jobs, skipping b when MSTAT is not
// set or a file is missing.
func statFile(b *testing.B) ([]Entry, []Job) {
	b.Helper()
	dir := os.Getenv("MSTAT")
	if dir == "" {
		b.Skip("MSTAT not set")
	}
	var es []Entry
	statLines(b, dir+"/filters.jsonl", func(line []byte) error {
		var l statFilterLine
		if err := json.Unmarshal(line, &l); err != nil {
			return err
		}
		es = append(es, Entry(l))
		return nil
	})
	var jobs []Job
	statLines(b, dir+"/jobs.jsonl", func(line []byte) error {
		var j Job
		if err := json.Unmarshal(line, &j); err != nil {
			return err
		}
		jobs = append(jobs, j)
		return nil
	})
	return es, jobs
}

func statLines(b *testing.B, path string, each func([]byte) error) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if err := each(sc.Bytes()); err != nil {
			b.Fatalf("%s: %v", path, err)
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatalf("%s: %v", path, err)
	}
}

func BenchmarkIndexFileBuild(b *testing.B) {
	es, _ := statFile(b)
	one := os.Getenv("MSTAT_ADD") != ""
	var ix *Index
	runtime.GC()
	b.ResetTimer()
	for b.Loop() {
		ix = NewIndex()
		if one {
			for _, e := range es {
				if err := ix.Add(e.ID, e.Filter); err != nil {
					b.Fatal(err)
				}
			}
		} else if errs := ix.AddBatch(es); len(errs) > 0 {
			b.Fatal(errs[0])
		}
	}
	b.StopTimer()

	var sizes []int
	exact := 0
	for _, g := range ix.groups.g[1:] {
		if g.blk == nil {
			continue
		}
		sizes = append(sizes, int(g.live))
		if g.data()[hdrMeta]&flagExact != 0 {
			exact++
		}
	}
	if len(sizes) == 0 {
		return
	}
	slices.Sort(sizes)
	singletons := 0
	for _, s := range sizes {
		if s == 1 {
			singletons++
		}
	}
	b.ReportMetric(float64(len(es)), "filters")
	b.ReportMetric(float64(len(sizes)), "groups")
	b.ReportMetric(float64(singletons), "singleton-groups")
	b.ReportMetric(float64(exact), "exact-groups")
	b.ReportMetric(float64(sizes[len(sizes)/2]), "median-group")
	b.ReportMetric(float64(sizes[len(sizes)*9/10]), "p90-group")
	b.ReportMetric(float64(sizes[len(sizes)-1]), "max-group")
	b.ReportMetric(float64(len(ix.pairs.all)), "pairs")
	b.ReportMetric(float64(len(ix.dict.byID)), "dict-entries")
}

func BenchmarkIndexFileMatch(b *testing.B) {
	es, jobs := statFile(b)
	if len(jobs) == 0 {
		b.Skip("no jobs")
	}
	ix := NewIndex()
	if errs := ix.AddBatch(es); len(errs) > 0 {
		b.Fatal(errs[0])
	}
	es = nil
	dst := make([]uint32, 0, 1<<17)
	matches := 0
	runtime.GC()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		dst = ix.Match(&jobs[i%len(jobs)], dst[:0])
		matches += len(dst)
	}
	b.ReportMetric(float64(matches)/float64(b.N), "matches/op")
}
