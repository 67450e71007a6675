package matcher

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
)

// addBatch is AddBatch with a given number of compiling goroutines.
func (ix *Index) addBatch(entries []Entry, workers int) []EntryError {
	n := len(entries)
	if n == 0 {
		return nil
	}
	workers = max(1, min(workers, n/1024+1))
	ix.mu.Lock()
	defer ix.mu.Unlock()

	// Compile on every CPU. Strings the dictionary does not hold yet are
	// interned under imu: Match and the other compilers look up without it.
	cfs := make([]cfilter, n)
	idh := make([]uint64, n)     // maphash of each id
	fresh := make([]*slotRec, n) // a record for each id, should it be new
	werrs := make([][]EntryError, workers)
	dfs := make([][][nKinds]int32, workers)
	var imu sync.Mutex
	intern := func(b []byte) *entry {
		imu.Lock()
		defer imu.Unlock()
		return ix.dict.internBytes(b)
	}
	parallel(workers, n, func(w, lo, hi int) {
		var c compiler
		var arena []uint32 // progs are copied into chunks that never move
		var df [][nKinds]int32
		for i := lo; i < hi; i++ {
			cf := &cfs[i]
			err := c.compile(&ix.dict, intern, &entries[i].Filter, cf)
			if err == nil && len(cf.prog) > maxProg {
				err = ErrTooLarge
			}
			if err != nil {
				werrs[w] = append(werrs[w], EntryError{Index: i, ID: entries[i].ID, Err: err})
				cf.prog, cf.flags = nil, ^uint32(0) // left out
				continue
			}
			if len(arena)+len(cf.prog) > cap(arena) {
				arena = make([]uint32, 0, max(1<<16, len(cf.prog)))
			}
			at := len(arena)
			arena = append(arena, cf.prog...)
			cf.prog = arena[at:len(arena):len(arena)]
			for _, id := range cf.prog { // ids in the prog bound the counts' length
				if int(id) >= len(df) {
					df = append(df, make([][nKinds]int32, int(id)+1-len(df)+1024)...)
				}
			}
			countInto(df, cf.flags, cf.prog, 1)
			idh[i] = maphash.String(ix.ids.seed, entries[i].ID)
			fresh[i] = &slotRec{id: entries[i].ID}
		}
		dfs[w] = df
	})
	var errs []EntryError
	for w := range workers {
		errs = append(errs, werrs[w]...)
	}
	// Count every value first, so that each new group is posted under the
	// values rarest over the whole index.
	for _, df := range dfs {
		for id := range min(len(df), len(ix.dict.df)) {
			for k := range nKinds {
				ix.dict.df[id][k] += df[id][k]
			}
		}
	}
	dfs = nil

	// Slots, in order: a later entry with the same id replaces an earlier
	// one (whose values are uncounted); a filter held is dropped from its
	// group now.
	ix.ids.reserve(ix, n)
	order := make([]*slotRec, 0, n)
	slots := make([]uint32, 0, n)
	for i := range entries {
		cf := &cfs[i]
		if cf.flags == ^uint32(0) {
			continue
		}
		rec, h, isNew, err := ix.slotForHashedLocked(entries[i].ID, idh[i], fresh[i], false)
		if err != nil {
			errs = append(errs, EntryError{Index: i, ID: entries[i].ID, Err: err})
			ix.countLocked(cf.flags, cf.prog, -1)
			continue
		}
		switch {
		case isNew:
		case rec.pend != 0: // an earlier entry of this batch
			prev := &cfs[rec.pend-1]
			ix.countLocked(prev.flags, prev.prog, -1)
			rec.pend = int32(i + 1)
			continue
		default:
			ix.dropMemberLocked(rec)
		}
		rec.pend = int32(i + 1)
		order = append(order, rec)
		slots = append(slots, h)
	}
	fresh, idh = nil, nil
	if len(errs) > 1 {
		slices.SortFunc(errs, func(a, b EntryError) int { return cmp.Compare(a.Index, b.Index) })
	}
	ents := make([]int32, len(order)) // the entry of each of order
	for k, rec := range order {
		ents[k] = rec.pend - 1
		rec.pend = 0
	}

	// Find each member's group: one held, or a new one of this batch. The
	// batch is split by hash, a part a goroutine.
	type newGroup struct {
		rep   int32 // the entry whose clauses it holds
		count int32
		at    uint32 // offset of its block in the arena
		gid   uint32
		words uint32 // of its members
		kwKey uint32
		rle   bool
	}
	parts := min(workers, 64)
	part := func(h uint64) int { return int(h>>40) % parts }
	partOf := make([]uint8, len(ents))
	for k, e := range ents {
		partOf[k] = uint8(part(cfs[e].hash))
	}
	ngs := make([][]newGroup, parts)
	memberOf := make([]int32, len(order)) // 1 + new group (of its part, then overall), or -gid of a group held
	parallel(parts, parts, func(w, _, _ int) {
		size := 1024
		for size < 2*len(order)/parts {
			size *= 2
		}
		table := make([]int32, size) // 1 + new group, by hash
		mask := uint64(size - 1)
		var ng []newGroup
		for k, e := range ents {
			if int(partOf[k]) != w {
				continue
			}
			cf := &cfs[e]
			if gid := ix.groups.find(cf); gid != 0 {
				memberOf[k] = -int32(gid)
				continue
			}
			i := cf.hash & mask
			for ; table[i] != 0; i = (i + 1) & mask {
				r := &cfs[ng[table[i]-1].rep]
				if r.hash == cf.hash && r.flags == cf.flags && r.big == cf.big && slices.Equal(r.prog, cf.prog) {
					break
				}
			}
			if table[i] == 0 {
				ng = append(ng, newGroup{rep: e})
				table[i] = int32(len(ng))
			}
			g := table[i]
			ng[g-1].count++
			memberOf[k] = g
		}
		ngs[w] = ng
	})
	var ng []newGroup
	base := make([]int32, parts)
	for w := range parts {
		base[w] = int32(len(ng))
		ng = append(ng, ngs[w]...)
		ngs[w] = nil
	}
	parallel(parts, len(order), func(_, lo, hi int) {
		for k := lo; k < hi; k++ {
			if memberOf[k] > 0 {
				memberOf[k] += base[partOf[k]]
			}
		}
	})

	// Each new group's members, sorted by their cheap clauses.
	first := make([]int32, len(ng)+1)
	for k := range ng {
		first[k+1] = first[k] + ng[k].count
	}
	mem := make([]member, first[len(ng)])
	fill := make([]int32, len(ng))
	for k, e := range ents {
		if g := memberOf[k]; g > 0 {
			cf := &cfs[e]
			mem[first[g-1]+fill[g-1]] = member{slots[k], cf.minSal, cf.cond}
			fill[g-1]++
		}
	}
	fill = nil

	// Lay the new blocks out in one arena in the order of their posting
	// lists, each sized exactly.
	type keyed struct {
		key uint64
		k   int32
	}
	sorted := make([]keyed, len(ng))
	parallel(parts, len(ng), func(_, lo, hi int) {
		var scratch []uint32
		for k := lo; k < hi; k++ {
			x := &ng[k]
			cf := &cfs[x.rep]
			ms := mem[first[k]:first[k+1]]
			if len(ms) > 1 {
				slices.SortFunc(ms, cmpMember)
			}
			words, rle := memberRegion(ms)
			x.words, x.rle = uint32(words), rle
			size := progStart(cf.flags) + len(cf.prog)
			if cap(scratch) < size {
				scratch = make([]uint32, size)
			}
			g := ix.initBlock(scratch[:size], cf)
			x.kwKey = g.kwKey
			sorted[k] = keyed{postKey(scratch[:size], g.kwKey), int32(k)}
		}
	})
	slices.SortFunc(sorted, func(a, b keyed) int { return cmp.Compare(a.key, b.key) })
	total := 0
	for _, s := range sorted {
		x := &ng[s.k]
		cf := &cfs[x.rep]
		x.at = uint32(total)
		total += progStart(cf.flags) + len(cf.prog) + int(x.words)
	}
	arena := make([]uint32, total)
	ix.groups.reserve(ix, len(ng))
	for _, s := range sorted {
		x := &ng[s.k]
		cf := &cfs[x.rep]
		size := progStart(cf.flags) + len(cf.prog) + int(x.words)
		x.gid = ix.groups.add(ix, cf.hash, groupMeta{
			blk: unsafe.Pointer(&arena[x.at]), cap: uint32(size), live: uint32(x.count), kwKey: x.kwKey})
	}
	parallel(parts, len(ng), func(_, lo, hi int) {
		for k := lo; k < hi; k++ {
			x := &ng[k]
			cf := &cfs[x.rep]
			ms := progStart(cf.flags) + len(cf.prog)
			data := arena[x.at : int(x.at)+ms+int(x.words) : int(x.at)+ms+int(x.words)]
			ix.initBlock(data, cf)
			encodeMembers(data, ms, mem[first[k]:first[k+1]], x.rle, func(m member, at uint32) {
				rec := ix.recAt(m.slot & slotMask)
				rec.gid, rec.pos = x.gid, at
			})
		}
	})
	mem = nil

	// Members of groups held, in entry order.
	for k, rec := range order {
		if memberOf[k] < 0 {
			cf := &cfs[ents[k]]
			ix.appendMemberLocked(uint32(-memberOf[k]), rec, [memberWords]uint32{slots[k], cf.minSal, cf.cond})
		}
	}

	// Post the new groups: size each list once, then append in block order.
	type post struct {
		l *atomic.Pointer[postings]
		p posting
	}
	posts := make([]post, 0, len(ng)+len(ng)/8)
	for _, s := range sorted {
		ix.eachPostingList(ng[s.k].gid, func(l *atomic.Pointer[postings], p posting) { posts = append(posts, post{l, p}) })
	}
	counts := make(map[*atomic.Pointer[postings]]int32)
	for i := 0; i < len(posts); {
		j := i + 1
		for j < len(posts) && posts[j].l == posts[i].l {
			j++
		}
		counts[posts[i].l] += int32(j - i)
		i = j
	}
	for l, c := range counts {
		reservePostings(l, int(c))
	}
	for i := range posts {
		appendPosting(posts[i].l, posts[i].p)
	}
	return errs
}

// parallel calls fn from parts goroutines, each with its part of [0, n).
func parallel(parts, n int, fn func(w, lo, hi int)) {
	if parts <= 1 {
		fn(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	per := (n + parts - 1) / parts
	for w := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(w, min(n, w*per), min(n, (w+1)*per))
		}()
	}
	wg.Wait()
}

// postKey orders new blocks by the posting list they go to first.
func postKey(data []uint32, kwKey uint32) uint64 {
	meta := data[hdrMeta]
	kind := metaKind(meta)
	b := uint32(0)
	if kind != kindKw && kind != kindAlways {
		prog := data[progStart(meta):metaMem(meta)]
		var lb [4]int
		c := parseProg(meta, prog, lb[:0])
		switch kind {
		case kindCompany:
			b = c.cos[0]
		case kindTag:
			b = c.tags[0]
		case kindLoc:
			b = ^uint32(0)
			for _, at := range c.locs {
				b = min(b, prog[at+1])
			}
		}
	}
	return uint64(kind)<<61 | uint64(kwKey&(1<<29-1))<<32 | uint64(b)
}
