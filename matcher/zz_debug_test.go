package matcher

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"
)

func TestZZDebug(t *testing.T) {
	dir := os.Getenv("WL")
	if dir == "" {
		t.Skip()
	}
	f, _ := os.Open(dir + "/filters.jsonl")
	sc := bufio.NewScanner(f)
	ix := NewIndex()
	t0 := time.Now()
	type fl struct {
		ID string `json:"id"`
		Filter
	}
	var fls []fl
	for sc.Scan() {
		var x fl
		json.Unmarshal(sc.Bytes(), &x)
		fls = append(fls, x)
	}
	t.Logf("load %v", time.Since(t0))
	t0 = time.Now()
	for _, x := range fls {
		ix.Add(x.ID, x.Filter)
	}
	t.Logf("build %v", time.Since(t0))
	kinds := map[int8]int{}
	sizes := []int{}
	for _, g := range ix.groups {
		for ; g != nil; g = g.next {
			kinds[g.kind]++
			sizes = append(sizes, len(*g.mem.Load()))
		}
	}
	sort.Ints(sizes)
	t.Logf("groups %d kinds %v median size %d max %d", len(sizes), kinds, sizes[len(sizes)/2], sizes[len(sizes)-1])
	// biggest posting lists
	type pl struct {
		k    string
		kind int
		n    int
	}
	var pls []pl
	for _, e := range ix.dict.byID[1:] {
		for k := range nKinds {
			if p := e.post[k].Load(); p != nil {
				pls = append(pls, pl{e.key, k, len(*p)})
			}
		}
	}
	sort.Slice(pls, func(i, j int) bool { return pls[i].n > pls[j].n })
	t.Logf("top postings %v", pls[:20])
	jf, _ := os.Open(dir + "/jobs.jsonl")
	sc = bufio.NewScanner(jf)
	var visited, accepted, members, matches, bloomPass int
	n := 0
	for sc.Scan() && n < 200 {
		var j Job
		json.Unmarshal(sc.Bytes(), &j)
		n++
		s := new(jobScratch)
		s.prepare(&ix.dict, ix.remote, &j)
		lists := []*[]posting{}
		vias := []uint32{}
		for _, e := range s.kwE {
			lists = append(lists, e.post[kindKw].Load())
			vias = append(vias, e.id)
		}
		if s.compE != nil {
			lists = append(lists, s.compE.post[kindCompany].Load())
			vias = append(vias, s.co)
		}
		for _, e := range s.tagE {
			lists = append(lists, e.post[kindTag].Load())
			vias = append(vias, e.id)
		}
		for _, e := range s.locE {
			lists = append(lists, e.post[kindLoc].Load())
			vias = append(vias, e.id)
		}
		for i, l := range lists {
			if l == nil {
				continue
			}
			for _, p := range *l {
				g := p.g
				visited++
				if p.need&^s.bloom != 0 { continue }
				bloomPass++
				if s.holds(g, vias[i], ix.remote.id) {
					accepted++
					members += len(*g.mem.Load())
				}
			}
		}
		matches += len(ix.Match(&j, nil))
	}
	t.Logf("bloompass %d", bloomPass/n)
	t.Logf("per job: visited %d accepted %d members %d matches %d", visited/n, accepted/n, members/n, matches/n)
	_ = fmt.Sprint
}
