package matcher

import (
	"bufio"
	"encoding/json"
	"os"
	"runtime"
	"sort"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

type statFilterLine struct {
	ID string `json:"id"`
	Filter
}

func statLoad(t *testing.T, path string) []statFilterLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	var out []statFilterLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l statFilterLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func statJobs(t *testing.T, path string) []Job {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	var out []Job
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var j Job
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

func TestIndexStats(t *testing.T) {
	dir := os.Getenv("MSTAT")
	if dir == "" {
		t.Skip("MSTAT not set")
	}
	fl := statLoad(t, dir+"/filters.jsonl")
	jobs := statJobs(t, dir+"/jobs.jsonl")
	ix := NewIndex()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	runtime.GC()
	c0 := cpu()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	batchTrace = func(p string, d time.Duration) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		t.Logf("  %s wall %v cpu %v alloc %d MB gcs %d", p, d, cpu()-c0, (ms.TotalAlloc-ms0.TotalAlloc)>>20, ms.NumGC-ms0.NumGC)
	}
	defer func() { batchTrace = nil }()
	st := time.Now()
	if os.Getenv("MSTAT_ADD") != "" {
		for _, f := range fl {
			if err := ix.Add(f.ID, f.Filter); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		es := make([]Entry, len(fl))
		for i, f := range fl {
			es[i] = Entry{f.ID, f.Filter}
		}
		if errs := ix.AddBatch(es); len(errs) > 0 {
			t.Fatal(errs[0])
		}
	}
	t.Logf("build %v", time.Since(st))
	// group stats
	sizes := []int{}
	kinds := map[uint8]int{}
	exact := 0
	for _, g := range ix.groups.g[1:] {
		if g.blk == nil {
			continue
		}
		sizes = append(sizes, int(g.live))
		kinds[metaKind(g.data()[hdrMeta])]++
		if g.data()[hdrMeta]&flagExact != 0 {
			exact++
		}
	}
	t.Logf("exact groups %d", exact)
	sort.Ints(sizes)
	one := 0
	for _, s := range sizes {
		if s == 1 {
			one++
		}
	}
	t.Logf("groups %d singletons %d median %d p90 %d max %d kinds %v pairs %d dict %d", len(sizes), one, sizes[len(sizes)/2], sizes[len(sizes)*9/10], sizes[len(sizes)-1], kinds, len(ix.pairs.all), len(ix.dict.byID))
	var lists, postings, cands, holdsOK, members, matched int
	var holdsMemberless, lookups, hits int
	for _, j := range jobs {
		s := new(jobScratch)
		s.prepare(&ix.dict, ix.remote, &j)
		scan := func(l []posting, via uint32) {
			lists++
			postings += len(l)
			for i := range l {
				if l[i].need&^s.bloom != 0 {
					continue
				}
				cands++
				w := unsafe.Slice((*uint32)(l[i].data), *(*uint32)(l[i].data))
				meta := w[hdrMeta]
				ms := metaMem(meta)
				if meta&flagExact != 0 || s.holds(w, meta, via, ix.remote.id) {
					holdsOK++
					n := (len(w) - int(ms)) / memberWords
					members += n
					before := 0
					var d []uint32
					d = s.members(w, meta, d)
					matched += len(d) - before
					if n == 1 {
						holdsMemberless++
					}
				}
			}
		}
		for _, e := range s.kwE {
			scan(loadPostings(&e.post[kindKw]), e.id)
		}
		sv := func(kind uint8, v *entry) {
			scan(loadPostings(&v.post[kind]), v.id)
			if v.pairs.Load()&(1<<kind) == 0 {
				return
			}
			for _, a := range s.kwE {
				if a.pairs.Load()&(1<<(4+kind)) == 0 {
					continue
				}
				lookups++
				if e := ix.pairs.lookup(kind, a.id, v.id); e != nil {
					hits++
					scan(loadPostings(&e.post), v.id)
				}
			}
		}
		if s.compE != nil {
			sv(kindCompany, s.compE)
		}
		for _, e := range s.tagE {
			sv(kindTag, e)
		}
		for _, e := range s.locE {
			sv(kindLoc, e)
		}
		scan(loadPostings(&ix.always), 0)
	}
	n := float64(len(jobs))
	t.Logf("pair lookups %.1f hits %.1f", float64(lookups)/float64(len(jobs)), float64(hits)/float64(len(jobs)))
	t.Logf("per job: lists %.1f postings %.1f cands %.1f holdsOK %.1f (single-member %.1f) members %.1f matched %.1f",
		float64(lists)/n, float64(postings)/n, float64(cands)/n, float64(holdsOK)/n, float64(holdsMemberless)/n, float64(members)/n, float64(matched)/n)
}

var statIx *Index
var statJ []Job

func BenchmarkIndexFile(b *testing.B) {
	dir := os.Getenv("MSTAT")
	if dir == "" {
		b.Skip("MSTAT not set")
	}
	if statIx == nil {
		t := &testing.T{}
		fl := statLoad(t, dir+"/filters.jsonl")
		statJ = statJobs(t, dir+"/jobs.jsonl")
		statIx = NewIndex()
		es := make([]Entry, len(fl))
		for i, f := range fl {
			es[i] = Entry{f.ID, f.Filter}
		}
		statIx.AddBatch(es)
	}
	dst := make([]uint32, 0, 1<<17)
	runtime.GC()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		dst = statIx.Match(&statJ[i%len(statJ)], dst[:0])
	}
}
