package matcher

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// Index is the fast matcher: it returns exactly what Compiled.Matches (and so
// Reference) returns, in time that grows with the filters that match a job,
// not with the filters stored.
//
// Structure. Filters whose "hard" clauses (keywords, exclude keywords,
// locations, companies, exclude companies, tags) are identical share a
// group. A group is one block of words: a header, its hard clauses as
// interned ids, then its members, three words each (slot, integral min
// salary, visa and seniority bit sets), so that a job checks a group's hard
// clauses once and then runs through its members in sequence. Each group is
// posted under pairs (a, b): a is the keyword token the fewest stored filters
// require, b each value of one clause the job must have a value of (its
// companies, else the rarest component of each location, else its tags);
// either half may be absent, and a group with neither goes to a short list
// every job scans. A posting holds a 64-bit summary of the values the group
// requires and a pointer to its block, so most groups a job cannot satisfy
// are passed over without a cache miss. A job visits only the lists of the
// pairs of its own title tokens and company, tags and location components;
// a group reachable through several values is accepted through one only
// (the first value of its clause that the job has).
//
// Concurrency. Match takes no lock and never waits. Blocks and posting
// lists are published through atomic pointers; a member or posting is
// appended beyond the published length and then published by an atomic
// store of the length or list, or the block or list is copied and the copy
// published. A removed member is tombstoned in place by an atomic store.
// Add, Update and Remove serialise among themselves on a writer mutex that
// Match never takes. A filter added, updated or removed while a Match runs
// may be reported by it as before or after the change (an updated one
// possibly twice; MatchIDs removes duplicates); every other filter is
// reported exactly as stored.
//
// Slots. Match reports a filter by its slot: 24 bits of index and 8 bits of
// generation. A removed filter's index is reused only after slotReuseDelay
// later removals, with its generation advanced, and IDs drops a slot whose
// generation is no longer current; so a slot held while its filter is
// removed resolves to nothing, never to another filter's id (short of its
// index being reused 256 times, i.e. over a million removals, between Match
// and IDs).
type Index struct {
	mu sync.Mutex // serialises writers; Match never takes it

	dict   dict
	pairs  pairTable
	remote *entry                   // the dictionary entry of "remote"
	always atomic.Pointer[postings] // groups without a hard clause
	slots  atomic.Pointer[[]*slotChunk]
	n      atomic.Int64
	pool   sync.Pool // *jobScratch

	// Writer-only state, under mu.
	groups map[uint64]*group // by hash of the hard clauses
	ids    idTable           // filter id -> slot index
	free   []uint32          // FIFO of freed slots, with their last generation
	freeHd int
	next   uint32 // the next never-used slot index
	tmp    []uint32
}

// ErrNotFound is returned by Update for an id the index does not hold.
var ErrNotFound = errors.New("matcher: filter not found")

// ErrFull is returned by Add when the index holds as many filters as its
// slots can address (16,777,215).
var ErrFull = errors.New("matcher: index full")

const (
	slotBits       = 24
	slotMask       = 1<<slotBits - 1
	maxSlots       = slotMask // the all-ones slot is deadSlot
	deadSlot       = ^uint32(0)
	chunkBits      = 12
	chunkSize      = 1 << chunkBits
	slotReuseDelay = 4096

	bigSalary = ^uint32(0) // a member's min salary: compare the block's big instead
	anyBit    = 1 << 15    // a visa or seniority bit every job has: the clause is absent

	// A group's block: header words, then the hard clauses, then members.
	hdrUsed     = 0 // words in use; loaded and stored atomically
	hdrMeta     = 1 // kind (low 8 bits) | index of the first member word << 8
	hdrBig      = 2 // two words: the float64 min salary of bigSalary members
	hdrProg     = 4
	memberWords = 3 // slot (atomic), min salary, visa bits | seniority bits << 16
)

// Clause kinds a group can be posted under.
const (
	kindKw = iota
	kindCompany
	kindTag
	kindLoc
	nKinds
	kindAlways = 0xff
)

type slotRec struct {
	id  string // immutable
	gen uint32 // immutable
	g   *group // writer only
	pos uint32 // writer only: member index in g
}

type slotChunk [chunkSize]atomic.Pointer[slotRec]

// posting is a group in a posting list: the bloomBit of every value the
// group requires, and its block.
type posting struct {
	need uint64
	data unsafe.Pointer // *uint32: the first word of the block; loaded and stored atomically
}

// bloomBit maps a dictionary id to one of 64 bits.
func bloomBit(id uint32) uint64 { return 1 << (uint64(id) * 0x9E3779B97F4A7C15 >> 58) }

// group is the writer's view of a group; Match sees only its block.
type group struct {
	data  []uint32 // the published block, at its full capacity
	next  *group   // same hash
	kwKey uint32   // the keyword token posted under (the pair's first half), or 0
	kind  uint8
	live  int32
	dead  int32
}

func (g *group) memStart() uint32 { return g.data[hdrMeta] >> 8 }
func (g *group) prog() []uint32   { return g.data[hdrProg:g.memStart()] }

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{groups: make(map[uint64]*group)}
	ix.dict.init()
	ix.pairs.init()
	ix.ids.seed = ix.dict.seed
	ix.remote = ix.dict.intern("remote")
	ix.pool.New = func() any { return new(jobScratch) }
	return ix
}

// Len returns the number of filters held.
func (ix *Index) Len() int { return int(ix.n.Load()) }

// Add adds the filter under id, replacing any filter already there. It fails
// as Compile does, on an unknown visa code or seniority, and with ErrFull.
func (ix *Index) Add(id string, f Filter) error {
	c, err := Compile(f)
	if err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.putLocked(id, c, false)
}

// Update replaces the filter under id. It fails with ErrNotFound when the
// index holds no filter under id, and as Add does; on failure the filter
// held stays.
func (ix *Index) Update(id string, f Filter) error {
	c, err := Compile(f)
	if err != nil {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.putLocked(id, c, true)
}

// Remove removes the filter under id and reports whether it was there.
func (ix *Index) Remove(id string) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	pos, ok := ix.ids.find(ix, id)
	if !ok {
		return false
	}
	idx := ix.ids.slot(pos)
	rec := ix.recAt(idx)
	ix.dropMemberLocked(rec)
	ix.chunk(idx)[idx&(chunkSize-1)].Store(nil)
	ix.ids.del(pos)
	ix.free = append(ix.free, idx|rec.gen<<slotBits)
	ix.n.Add(-1)
	return true
}

func (ix *Index) putLocked(id string, c *Compiled, mustExist bool) error {
	pos, exists := ix.ids.find(ix, id)
	if mustExist && !exists {
		return fmt.Errorf("update %q: %w", id, ErrNotFound)
	}
	var rec *slotRec
	var h uint32
	if exists {
		idx := ix.ids.slot(pos)
		rec = ix.recAt(idx)
		h = idx | rec.gen<<slotBits
		ix.dropMemberLocked(rec)
	} else {
		var err error
		h, err = ix.newSlotLocked()
		if err != nil {
			return err
		}
		idx := h & slotMask
		rec = &slotRec{id: id, gen: h >> slotBits}
		ix.chunk(idx)[idx&(chunkSize-1)].Store(rec)
		ix.ids.insert(ix, id, idx)
		ix.n.Add(1)
	}
	visa, sen := uint32(c.Visa), uint32(c.Seniority)
	if visa == 0 {
		visa = anyBit
	}
	if sen == 0 {
		sen = anyBit
	}
	var minSal uint32
	big := 0.0
	switch {
	case c.MinSalary <= 0:
	case c.MinSalary < float64(bigSalary):
		minSal = uint32(c.MinSalary)
	default:
		minSal, big = bigSalary, c.MinSalary
	}
	g := ix.groupLocked(c, big)
	ix.appendMemberLocked(g, rec, [memberWords]uint32{h, minSal, visa | sen<<16})
	return nil
}

func (ix *Index) newSlotLocked() (uint32, error) {
	if len(ix.free)-ix.freeHd > slotReuseDelay {
		old := ix.free[ix.freeHd]
		ix.freeHd++
		if ix.freeHd > 1024 && ix.freeHd*2 > len(ix.free) {
			ix.free = append(ix.free[:0], ix.free[ix.freeHd:]...)
			ix.freeHd = 0
		}
		gen := (old>>slotBits + 1) & 0xff
		return old&slotMask | gen<<slotBits, nil
	}
	if ix.next >= maxSlots {
		return 0, ErrFull
	}
	idx := ix.next
	ix.next++
	if idx&(chunkSize-1) == 0 {
		var chunks []*slotChunk
		if p := ix.slots.Load(); p != nil {
			chunks = *p
		}
		grown := append(chunks[:len(chunks):len(chunks)], new(slotChunk))
		ix.slots.Store(&grown)
	}
	return idx, nil
}

func (ix *Index) chunk(idx uint32) *slotChunk { return (*ix.slots.Load())[idx>>chunkBits] }

func (ix *Index) recAt(idx uint32) *slotRec { return ix.chunk(idx)[idx&(chunkSize-1)].Load() }

// IDs appends to dst the filter id of each slot Match returned, in order. A
// slot whose filter has been removed since is skipped.
func (ix *Index) IDs(slots []uint32, dst []string) []string {
	p := ix.slots.Load()
	if p == nil {
		return dst
	}
	chunks := *p
	for _, h := range slots {
		idx := h & slotMask
		if int(idx>>chunkBits) >= len(chunks) {
			continue
		}
		rec := chunks[idx>>chunkBits][idx&(chunkSize-1)].Load()
		if rec != nil && rec.gen == h>>slotBits {
			dst = append(dst, rec.id)
		}
	}
	return dst
}

// MatchIDs returns the ids of the filters that match j, sorted ascending and
// without duplicates: the form the pipeline and Reference use.
func (ix *Index) MatchIDs(j *Job) []string {
	slots := ix.Match(j, nil)
	ids := ix.IDs(slots, make([]string, 0, len(slots)))
	sort.Strings(ids)
	return slices.Compact(ids)
}

// idTable maps filter ids to slot indexes: open addressing over the slot
// records, four bytes an entry (24 bits of slot index + 1, 7 bits of hash),
// so that it costs a few bytes a filter. Writer only.
type idTable struct {
	seed  maphash.Seed
	t     []uint32 // 0 empty; idTomb deleted
	n     int
	tombs int
}

const idTomb = ^uint32(0)

func idEntry(h uint64, idx uint32) uint32 { return uint32(h>>57)<<slotBits | (idx + 1) }

func (t *idTable) find(ix *Index, id string) (int, bool) {
	if len(t.t) == 0 {
		return 0, false
	}
	h := maphash.String(t.seed, id)
	fp := uint32(h>>57) << slotBits
	mask := uint64(len(t.t) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch v := t.t[i]; {
		case v == 0:
			return 0, false
		case v != idTomb && v&^slotMask == fp && ix.recAt(v&slotMask-1).id == id:
			return int(i), true
		}
	}
}

// slot returns the slot index stored at pos.
func (t *idTable) slot(pos int) uint32 { return t.t[pos]&slotMask - 1 }

// insert adds id, which must be absent, at slot index idx.
func (t *idTable) insert(ix *Index, id string, idx uint32) {
	if (t.n+t.tombs+1)*4 > len(t.t)*3 {
		size := 1024
		for size < (t.n+1)*2 {
			size *= 2
		}
		// Rehash in slot order: the records are read in sequence.
		t.t, t.tombs = make([]uint32, size), 0
		for c, ch := range *ix.slots.Load() {
			for i := range ch {
				at := uint32(c)<<chunkBits | uint32(i)
				if rec := ch[i].Load(); rec != nil && at != idx {
					t.place(maphash.String(t.seed, rec.id), at)
				}
			}
		}
	}
	t.place(maphash.String(t.seed, id), idx)
	t.n++
}

func (t *idTable) place(h uint64, idx uint32) {
	mask := uint64(len(t.t) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if t.t[i] == 0 || t.t[i] == idTomb {
			if t.t[i] == idTomb {
				t.tombs--
			}
			t.t[i] = idEntry(h, idx)
			return
		}
	}
}

func (t *idTable) del(pos int) {
	t.t[pos] = idTomb
	t.n--
	t.tombs++
}

// --- groups ---------------------------------------------------------------

// groupLocked interns c's hard clauses, counts them, and returns the group
// holding exactly those clauses, creating and posting it when new.
func (ix *Index) groupLocked(c *Compiled, big float64) *group {
	d := &ix.dict
	p := append(ix.tmp[:0], 0)
	for _, t := range c.Keywords {
		p = append(p, d.intern(t).id)
	}
	p = sortSet(p, 0)
	p = append(p, uint32(len(c.ExcludeKeywords)))
	for _, ex := range c.ExcludeKeywords {
		p = append(p, uint32(len(ex)))
		for _, t := range ex {
			p = append(p, d.intern(t).id)
		}
	}
	locStart := len(p)
	p = append(p, uint32(len(c.Locations)))
	for _, loc := range c.Locations {
		p = append(p, uint32(len(loc)), 0) // the posting component, chosen below
		for _, comp := range loc {
			p = append(p, d.intern(comp).id)
		}
	}
	p = appendKeySet(p, d, c.Companies)
	p = appendKeySet(p, d, c.ExcludeCompanies)
	p = appendKeySet(p, d, c.Tags)
	ix.tmp = p

	cl := parseProg(p)
	ix.countLocked(p, cl, 1)

	h := hashProg(d.seed, p, big)
	for g := ix.groups[h]; g != nil; g = g.next {
		if math.Float64frombits(uint64(g.data[hdrBig])|uint64(g.data[hdrBig+1])<<32) == big && progEqual(g.prog(), p, locStart) {
			return g
		}
	}

	memStart := uint32(hdrProg + len(p))
	g := &group{data: make([]uint32, int(memStart)+memberWords)}
	copy(g.data[hdrProg:], p)
	g.data[hdrUsed] = memStart
	g.data[hdrMeta] = memStart << 8
	bits := math.Float64bits(big)
	g.data[hdrBig], g.data[hdrBig+1] = uint32(bits), uint32(bits>>32)
	g.next = ix.groups[h]
	ix.groups[h] = g
	prog := g.prog()

	// Post the group under a pair (a, b): a is the keyword token that the
	// fewest stored filters require, b each value of one of the clauses of
	// which the job must have a value: companies (the most selective), else
	// locations (each one's rarest component), else tags. Either half may be
	// absent; a group with neither goes to the list every job scans.
	kind, cost := uint8(kindAlways), int64(math.MaxInt64)
	for _, t := range cl.kws {
		if df := int64(d.byID[t].df[kindKw]); df < cost {
			kind, cost, g.kwKey = kindKw, df, t
		}
	}
	for _, at := range cl.locs {
		best, bestDF := uint32(0), int32(math.MaxInt32)
		for _, comp := range prog[at+2 : at+2+int(prog[at])] {
			if df := d.byID[comp].df[kindLoc]; df < bestDF {
				best, bestDF = comp, df
			}
		}
		prog[at+1] = best
	}
	switch {
	case len(cl.cos) > 0:
		kind = kindCompany
	case len(cl.locs) > 0:
		kind = kindLoc
	case len(cl.tags) > 0:
		kind = kindTag
	}
	g.kind = kind
	g.data[hdrMeta] = uint32(kind) | memStart<<8

	var need uint64
	for _, t := range cl.kws {
		need |= bloomBit(t)
	}
	if len(cl.locs) == 1 {
		at := cl.locs[0]
		for _, comp := range prog[at+2 : at+2+int(prog[at])] {
			need |= bloomBit(comp)
		}
	}
	if len(cl.cos) == 1 {
		need |= bloomBit(cl.cos[0])
	}
	if len(cl.tags) == 1 {
		need |= bloomBit(cl.tags[0])
	}
	ix.eachPostingList(g, func(l *atomic.Pointer[postings]) {
		appendPosting(l, posting{need: need, data: unsafe.Pointer(&g.data[0])})
	})
	return g
}

// postings is a posting list. items[:n] are published; the writer appends
// beyond n and then stores n, or publishes a grown or shrunk copy.
type postings struct {
	n     atomic.Uint32
	items []posting
}

func loadPostings(p *atomic.Pointer[postings]) []posting {
	pl := p.Load()
	if pl == nil {
		return nil
	}
	return pl.items[:pl.n.Load()]
}

func appendPosting(p *atomic.Pointer[postings], x posting) {
	pl := p.Load()
	if pl != nil && int(pl.n.Load()) < len(pl.items) {
		n := pl.n.Load()
		pl.items[n] = x
		pl.n.Store(n + 1)
		return
	}
	var cur []posting
	if pl != nil {
		cur = pl.items
	}
	np := &postings{items: make([]posting, max(1, 2*len(cur)))}
	copy(np.items, cur)
	np.items[len(cur)] = x
	np.n.Store(uint32(len(cur) + 1))
	p.Store(np)
}

// clauses locates the parts of a prog.
type clauses struct {
	kws, cos, tags []uint32
	locs           []int // offset of each location's length word
}

func parseProg(p []uint32) clauses {
	var c clauses
	i := 0
	next := func() []uint32 {
		n := int(p[i])
		l := p[i+1 : i+1+n]
		i += 1 + n
		return l
	}
	c.kws = next()
	nEx := int(p[i])
	i++
	for range nEx {
		i += 1 + int(p[i])
	}
	nLoc := int(p[i])
	i++
	for range nLoc {
		c.locs = append(c.locs, i)
		i += 2 + int(p[i])
	}
	c.cos = next()
	next() // exclude companies
	c.tags = next()
	return c
}

// countLocked adds delta to the per-kind counts of the prog's values.
func (ix *Index) countLocked(p []uint32, cl clauses, delta int32) {
	d := &ix.dict
	for _, t := range cl.kws {
		d.byID[t].df[kindKw] += delta
	}
	for _, t := range cl.cos {
		d.byID[t].df[kindCompany] += delta
	}
	for _, t := range cl.tags {
		d.byID[t].df[kindTag] += delta
	}
	for _, at := range cl.locs {
		for _, comp := range p[at+2 : at+2+int(p[at])] {
			d.byID[comp].df[kindLoc] += delta
		}
	}
}

// eachPostingList calls fn with every posting list g is (to be) posted in,
// creating pair lists as needed.
func (ix *Index) eachPostingList(g *group, fn func(*atomic.Pointer[postings])) {
	d := &ix.dict
	switch g.kind {
	case kindAlways:
		fn(&ix.always)
		return
	case kindKw:
		fn(&d.byID[g.kwKey].post[kindKw])
		return
	}
	prog := g.prog()
	cl := parseProg(prog)
	var keys []uint32
	switch g.kind {
	case kindCompany:
		keys = cl.cos
	case kindTag:
		keys = cl.tags
	case kindLoc:
		for _, at := range cl.locs {
			keys = append(keys, prog[at+1])
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
	}
	for _, b := range keys {
		if g.kwKey == 0 {
			fn(&d.byID[b].post[g.kind])
			continue
		}
		fn(&ix.pairs.get(d, g.kind, g.kwKey, b).post)
	}
}

func sortSet(p []uint32, start int) []uint32 {
	s := p[start+1:]
	slices.Sort(s)
	s = slices.Compact(s)
	p = p[:start+1+len(s)]
	p[start] = uint32(len(s))
	return p
}

func appendKeySet(p []uint32, d *dict, keys []string) []uint32 {
	start := len(p)
	p = append(p, 0)
	for _, k := range keys {
		p = append(p, d.intern(k).id)
	}
	return sortSet(p, start)
}

// progEqual compares a group's prog with a candidate's, whose location
// posting words are not chosen yet.
func progEqual(a, b []uint32, locStart int) bool {
	if len(a) != len(b) || !slices.Equal(a[:locStart+1], b[:locStart+1]) {
		return false
	}
	i := locStart + 1
	for range int(a[locStart]) {
		l := int(a[i])
		if b[i] != a[i] || !slices.Equal(a[i+2:i+2+l], b[i+2:i+2+l]) {
			return false
		}
		i += 2 + l
	}
	return slices.Equal(a[i:], b[i:])
}

// hashProg hashes a candidate prog (location posting words zero) and big.
func hashProg(seed maphash.Seed, p []uint32, big float64) uint64 {
	h := math.Float64bits(big) * 0x9E3779B97F4A7C15
	if len(p) == 0 {
		return h
	}
	return h ^ maphash.Bytes(seed, unsafe.Slice((*byte)(unsafe.Pointer(&p[0])), 4*len(p)))
}

// appendMemberLocked appends a member to g's block, in place beyond the
// published length, or in a grown copy that it then publishes.
func (ix *Index) appendMemberLocked(g *group, rec *slotRec, m [memberWords]uint32) {
	used := g.data[hdrUsed]
	if int(used)+memberWords > len(g.data) {
		members := (used - g.memStart()) / memberWords
		ix.republishLocked(g, int(g.memStart())+int(max(2*members, 2))*memberWords, false)
		used = g.data[hdrUsed]
	}
	copy(g.data[used:], m[:])
	rec.g, rec.pos = g, (used-g.memStart())/memberWords
	atomic.StoreUint32(&g.data[hdrUsed], used+memberWords)
	g.live++
}

// republishLocked copies g's block into a new one of size words, leaving out
// tombstoned members when compact, and points g's postings at it.
func (ix *Index) republishLocked(g *group, size int, compact bool) {
	old := g.data
	ms := g.memStart()
	nd := make([]uint32, size)
	copy(nd, old[:ms])
	w := ms
	for k := ms; k < old[hdrUsed]; k += memberWords {
		if compact {
			h := old[k]
			if h == deadSlot {
				continue
			}
			ix.recAt(h & slotMask).pos = (w - ms) / memberWords
		}
		copy(nd[w:w+memberWords], old[k:k+memberWords])
		w += memberWords
	}
	nd[hdrUsed] = w
	g.data = nd
	oldP := unsafe.Pointer(&old[0])
	ix.eachPostingList(g, func(l *atomic.Pointer[postings]) {
		list := loadPostings(l)
		for i := range list {
			if atomic.LoadPointer(&list[i].data) == oldP {
				atomic.StorePointer(&list[i].data, unsafe.Pointer(&nd[0]))
			}
		}
	})
}

// dropMemberLocked tombstones rec's member, uncounts its clauses, and
// compacts or unposts its group when that pays.
func (ix *Index) dropMemberLocked(rec *slotRec) {
	g := rec.g
	atomic.StoreUint32(&g.data[g.memStart()+rec.pos*memberWords], deadSlot)
	rec.g = nil
	g.live--
	g.dead++
	prog := g.prog()
	cl := parseProg(prog)
	ix.countLocked(prog, cl, -1)
	switch {
	case g.live == 0:
		ix.unpostLocked(g)
	case g.dead > 8 && g.dead > g.live:
		ix.republishLocked(g, int(g.memStart())+int(g.live)*memberWords, true)
		g.dead = 0
	}
}

func (ix *Index) unpostLocked(g *group) {
	p := unsafe.Pointer(&g.data[0])
	ix.eachPostingList(g, func(l *atomic.Pointer[postings]) {
		old := loadPostings(l)
		np := &postings{items: make([]posting, 0, len(old))}
		for i := range old {
			if d := atomic.LoadPointer(&old[i].data); d != p {
				np.items = append(np.items, posting{need: old[i].need, data: d})
			}
		}
		np.n.Store(uint32(len(np.items)))
		np.items = np.items[:cap(np.items)]
		l.Store(np)
	})
	// The group's hash is that of its prog with the posting words zeroed.
	q := append(ix.tmp[:0], g.prog()...)
	for _, at := range parseProg(q).locs {
		q[at+1] = 0
	}
	ix.tmp = q
	bits := uint64(g.data[hdrBig]) | uint64(g.data[hdrBig+1])<<32
	hash := hashProg(ix.dict.seed, q, math.Float64frombits(bits))
	var prev *group
	for x := ix.groups[hash]; x != nil; prev, x = x, x.next {
		if x != g {
			continue
		}
		switch {
		case prev != nil:
			prev.next = x.next
		case x.next != nil:
			ix.groups[hash] = x.next
		default:
			delete(ix.groups, hash)
		}
		break
	}
}

// --- the dictionary ---------------------------------------------------------

// entry is one interned string: a keyword token, a company, tag or location
// component key, or a location component. Ids start at 1; 0 is "unknown".
type entry struct {
	key   string
	id    uint32
	hash  uint64
	post  [nKinds]atomic.Pointer[postings] // groups posted under this value alone, per clause kind
	pairs atomic.Uint32                    // bit k: a pair (x, this) of kind k exists; bit 4+k: a pair (this, x)
	df    [nKinds]int32                    // filters holding this value, per clause kind; writer only
}

// dict interns strings. Lookups are lock-free (an open-addressing table
// published through an atomic pointer, grown by copy); inserts happen under
// the Index writer mutex. Entries are never removed.
type dict struct {
	seed maphash.Seed
	t    atomic.Pointer[dictTable]
	n    int
	byID []*entry // writer only
}

type dictTable struct {
	mask  uint64
	slots []atomic.Pointer[entry]
}

func (d *dict) init() {
	d.seed = maphash.MakeSeed()
	t := &dictTable{mask: 1023, slots: make([]atomic.Pointer[entry], 1024)}
	d.t.Store(t)
	d.byID = []*entry{nil}
}

func (d *dict) lookup(b []byte) *entry {
	t := d.t.Load()
	for i := maphash.Bytes(d.seed, b) & t.mask; ; i = (i + 1) & t.mask {
		e := t.slots[i].Load()
		if e == nil || e.key == string(b) {
			return e
		}
	}
}

func (d *dict) intern(s string) *entry {
	h := maphash.String(d.seed, s)
	t := d.t.Load()
	i := h & t.mask
	for ; ; i = (i + 1) & t.mask {
		e := t.slots[i].Load()
		if e == nil {
			break
		}
		if e.key == s {
			return e
		}
	}
	e := &entry{key: s, id: uint32(len(d.byID)), hash: h}
	d.byID = append(d.byID, e)
	d.n++
	if d.n*4 >= len(t.slots)*3 {
		nt := &dictTable{mask: uint64(len(t.slots)*2 - 1), slots: make([]atomic.Pointer[entry], len(t.slots)*2)}
		for _, x := range d.byID[1:] {
			for j := x.hash & nt.mask; ; j = (j + 1) & nt.mask {
				if nt.slots[j].Load() == nil {
					nt.slots[j].Store(x)
					break
				}
			}
		}
		d.t.Store(nt)
		return e
	}
	t.slots[i].Store(e)
	return e
}

// --- pairs ----------------------------------------------------------------

// pairEntry is the posting list of the groups posted under (a, b) of a kind.
type pairEntry struct {
	key  uint64
	post atomic.Pointer[postings]
}

// pairTable maps (kind, a, b) to its posting list, with lock-free lookups
// like dict's.
type pairTable struct {
	t   atomic.Pointer[pairSlots]
	all []*pairEntry // writer only
}

type pairSlots struct {
	shift uint
	s     []atomic.Pointer[pairEntry]
}

func pairKey(kind uint8, a, b uint32) uint64 {
	return uint64(kind)<<62 | uint64(a)<<31 | uint64(b)
}

func (t *pairSlots) home(key uint64) uint64 { return key * 0x9E3779B97F4A7C15 >> t.shift }

func (p *pairTable) init() {
	p.t.Store(&pairSlots{shift: 64 - 10, s: make([]atomic.Pointer[pairEntry], 1<<10)})
}

func (p *pairTable) lookup(kind uint8, a, b uint32) *pairEntry {
	key := pairKey(kind, a, b)
	t := p.t.Load()
	mask := uint64(len(t.s) - 1)
	for i := t.home(key); ; i = (i + 1) & mask {
		e := t.s[i].Load()
		if e == nil || e.key == key {
			return e
		}
	}
}

// get returns the entry of (kind, a, b), creating it. Writer only.
func (p *pairTable) get(d *dict, kind uint8, a, b uint32) *pairEntry {
	if e := p.lookup(kind, a, b); e != nil {
		return e
	}
	e := &pairEntry{key: pairKey(kind, a, b)}
	p.all = append(p.all, e)
	t := p.t.Load()
	if len(p.all)*4 >= len(t.s)*3 {
		nt := &pairSlots{shift: t.shift - 1, s: make([]atomic.Pointer[pairEntry], 2*len(t.s))}
		for _, x := range p.all {
			nt.put(x)
		}
		p.t.Store(nt)
	} else {
		t.put(e)
	}
	ea, eb := d.byID[a], d.byID[b]
	ea.pairs.Store(ea.pairs.Load() | 1<<(4+kind))
	eb.pairs.Store(eb.pairs.Load() | 1<<kind)
	return e
}

func (t *pairSlots) put(e *pairEntry) {
	mask := uint64(len(t.s) - 1)
	for i := t.home(e.key); ; i = (i + 1) & mask {
		if t.s[i].Load() == nil {
			t.s[i].Store(e)
			return
		}
	}
}

// --- matching ---------------------------------------------------------------

// jobScratch is a job normalised for the index, into reused buffers.
type jobScratch struct {
	buf    []byte
	join   []byte
	offs   []int32 // token end offsets in buf
	tok    []uint32
	kwE    []*entry
	tags   []uint32
	tagE   []*entry
	locs   []uint32 // component ids of every location, concatenated
	locEnd []int32
	locE   []*entry
	compE  *entry
	co     uint32
	bloom  uint64      // bloomBit of every id above
	tokSet [256]uint32 // tok as an open-addressing set (0 empty), when it fits
	cand   []unsafe.Pointer
	used   []uint32
	remote bool
	jm     uint32 // visa bits | seniority bits << 16, with anyBit in both
	salCap uint32 // min salaries up to salCap hold
	annual float64
	hasSal bool
}

// Match appends to dst the slot of every filter that matches j and returns
// it; it allocates nothing when dst has the capacity. Resolve slots with IDs.
func (ix *Index) Match(j *Job, dst []uint32) []uint32 {
	s := ix.pool.Get().(*jobScratch)
	s.prepare(&ix.dict, ix.remote, j)
	remote := ix.remote.id
	for _, e := range s.kwE {
		dst = s.scan(loadPostings(&e.post[kindKw]), e.id, remote, dst)
	}
	if s.compE != nil {
		dst = ix.scanValue(s, kindCompany, s.compE, dst)
	}
	for _, e := range s.tagE {
		dst = ix.scanValue(s, kindTag, e, dst)
	}
	for _, e := range s.locE {
		dst = ix.scanValue(s, kindLoc, e, dst)
	}
	dst = s.scan(loadPostings(&ix.always), 0, remote, dst)
	s.compE = nil
	clear(s.kwE)
	clear(s.tagE)
	clear(s.locE)
	ix.pool.Put(s)
	return dst
}

// scanValue scans the groups posted under the value v of a clause kind,
// alone and paired with each of the job's title tokens.
func (ix *Index) scanValue(s *jobScratch, kind uint8, v *entry, dst []uint32) []uint32 {
	remote := ix.remote.id
	dst = s.scan(loadPostings(&v.post[kind]), v.id, remote, dst)
	if v.pairs.Load()&(1<<kind) == 0 {
		return dst
	}
	for _, a := range s.kwE {
		if a.pairs.Load()&(1<<(4+kind)) == 0 {
			continue
		}
		if e := ix.pairs.lookup(kind, a.id, v.id); e != nil {
			dst = s.scan(loadPostings(&e.post), v.id, remote, dst)
		}
	}
	return dst
}

// scan appends the matching members of the groups of a posting list reached
// through the value via.
func (s *jobScratch) scan(l []posting, via, remote uint32, dst []uint32) []uint32 {
	if len(l) == 0 {
		return dst
	}
	bloom := s.bloom
	if len(s.used) < scanBatch {
		s.used = make([]uint32, scanBatch)
	}
	for start := 0; start < len(l); start += scanBatch {
		// Pass 1: the postings whose summary the job satisfies.
		cand := s.cand[:0]
		for i := start; i < min(start+scanBatch, len(l)); i++ {
			if p := &l[i]; p.need&^bloom == 0 {
				cand = append(cand, atomic.LoadPointer(&p.data))
			}
		}
		// Pass 2: load the first word of each block. The loads are
		// independent, so their cache misses overlap instead of queueing.
		used := s.used[:len(cand)]
		for i, c := range cand {
			used[i] = atomic.LoadUint32((*uint32)(c))
		}
		// Pass 3: check each group and run through its members.
		for i, c := range cand {
			w := unsafe.Slice((*uint32)(c), used[i])
			meta := w[hdrMeta]
			ms := meta >> 8
			if s.holds(w[hdrProg:ms], uint8(meta), via, remote) {
				dst = s.members(w, int(ms), dst)
			}
		}
		clear(cand)
		s.cand = cand
	}
	return dst
}

// scanBatch bounds the candidates of one pass so that their blocks' first
// lines are still in cache when pass 3 reaches them.
const scanBatch = 128

// members appends the live members of a block from word ms on whose cheap
// clauses the job satisfies, without branching on the outcome.
func (s *jobScratch) members(w []uint32, ms int, dst []uint32) []uint32 {
	n := (len(w) - ms) / memberWords
	if cap(dst)-len(dst) < n {
		dst = slices.Grow(dst, n)
	}
	out := dst[len(dst) : len(dst)+n]
	jm, salCap := s.jm, uint64(s.salCap)
	if w[hdrBig] != 0 || w[hdrBig+1] != 0 { // members with a min salary over 2^32-2
		big := math.Float64frombits(uint64(w[hdrBig]) | uint64(w[hdrBig+1])<<32)
		k := 0
		for at := ms; at+memberWords <= len(w); at += memberWords {
			x := w[at+2] & jm
			minSal := w[at+1]
			salOK := uint64(minSal) <= salCap || minSal == bigSalary && s.hasSal && !(s.annual < big)
			if x&0xffff != 0 && x>>16 != 0 && salOK {
				if h := atomic.LoadUint32(&w[at]); h != deadSlot {
					out[k] = h
					k++
				}
			}
		}
		return dst[:len(dst)+k]
	}
	k := 0
	for at := ms; at+memberWords <= len(w); at += memberWords {
		x := w[at+2] & jm
		h := atomic.LoadUint32(&w[at])
		out[k] = h
		// Each factor is 1 when its clause holds: visa, seniority, salary,
		// and the member is not a tombstone.
		ok := nonZero(x&0xffff) & nonZero(x>>16) & uint32(1^(salCap-uint64(w[at+1]))>>63) & nonZero(h^deadSlot)
		k += int(ok)
	}
	return dst[:len(dst)+k]
}

// nonZero returns 1 when x is not 0, else 0, without a branch.
func nonZero(x uint32) uint32 { return uint32((uint64(x) | -uint64(x)) >> 63) }

// holds reports whether the job satisfies a group's hard clauses and, for a
// group posted under several values of a clause, whether via is the one
// that accepts it.
func (s *jobScratch) holds(p []uint32, kind uint8, via, remoteKey uint32) bool {
	i := 0
	n := int(p[i])
	i++
	for _, t := range p[i : i+n] {
		if !s.hasTok(t) {
			return false
		}
	}
	i += n
	n = int(p[i])
	i++
	for range n {
		l := int(p[i])
		i++
		all := true
		for _, t := range p[i : i+l] {
			if !s.hasTok(t) {
				all = false
				break
			}
		}
		if all {
			return false
		}
		i += l
	}
	n = int(p[i])
	i++
	if n > 0 {
		matched := false
		for range n {
			l := int(p[i])
			post := p[i+1]
			run := p[i+2 : i+2+l]
			i += 2 + l
			if !matched && s.locMatch(run, remoteKey) {
				if kind == kindLoc && post != via {
					return false
				}
				matched = true
			}
		}
		if !matched {
			return false
		}
	}
	n = int(p[i])
	i++
	if n > 0 && !hasID(p[i:i+n], s.co) {
		return false
	}
	i += n
	n = int(p[i])
	i++
	if n > 0 && hasID(p[i:i+n], s.co) {
		return false
	}
	i += n
	n = int(p[i])
	i++
	if n > 0 {
		for _, t := range p[i : i+n] {
			if hasID(s.tags, t) {
				return kind != kindTag || t == via
			}
		}
		return false
	}
	return true
}

func (s *jobScratch) locMatch(run []uint32, remoteKey uint32) bool {
	if s.remote && len(run) == 1 && run[0] == remoteKey {
		return true
	}
	start := int32(0)
	for _, end := range s.locEnd {
		if containsRunIDs(s.locs[start:end], run) {
			return true
		}
		start = end
	}
	return false
}

func containsRunIDs(comps, run []uint32) bool {
	for i := 0; i+len(run) <= len(comps); i++ {
		ok := true
		for k := range run {
			if comps[i+k] != run[k] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func hasID(list []uint32, id uint32) bool {
	for _, x := range list {
		if x == id {
			return true
		}
	}
	return false
}

// prepare normalises j exactly as Prepare does, without allocating once the
// buffers have grown: strings unknown to the dictionary are left out (no
// filter can name them), known ones become ids.
func (s *jobScratch) prepare(d *dict, remote *entry, j *Job) {
	s.bloom = 0
	s.tokSet = [len(s.tokSet)]uint32{}
	s.tok, s.kwE = s.tok[:0], s.kwE[:0]
	s.tags, s.tagE = s.tags[:0], s.tagE[:0]
	s.locs, s.locEnd, s.locE = s.locs[:0], s.locEnd[:0], s.locE[:0]

	// Title tokens and adjacent joins.
	s.buf, s.offs = appendTokenBytes(s.buf[:0], s.offs[:0], j.Title)
	start := int32(0)
	for k, end := range s.offs {
		s.addTok(d.lookup(s.buf[start:end]))
		if k > 0 {
			prevStart := int32(0)
			if k > 1 {
				prevStart = s.offs[k-2]
			}
			s.join = append(append(s.join[:0], s.buf[prevStart:start]...), s.buf[start:end]...)
			s.addTok(d.lookup(s.join))
		}
		start = end
	}

	// Company.
	s.buf = appendKey(s.buf[:0], j.Company)
	s.co, s.compE = 0, d.lookup(s.buf)
	if s.compE != nil {
		s.co = s.compE.id
		s.bloom |= bloomBit(s.co)
	}

	// Tags.
	for _, t := range j.Tags {
		s.buf = appendKey(s.buf[:0], t)
		if e := d.lookup(s.buf); e != nil && !hasID(s.tags, e.id) {
			s.bloom |= bloomBit(e.id)
			s.tags = append(s.tags, e.id)
			s.tagE = append(s.tagE, e)
		}
	}

	// Locations: component ids (0 when unknown), kept per location.
	s.remote = eqLower(j.Workplace, "remote")
	for _, l := range j.Locations {
		n := len(s.locs)
		s.appendLocation(d, l)
		if len(s.locs) > n {
			s.locEnd = append(s.locEnd, int32(len(s.locs)))
		}
	}
	if s.remote {
		s.addLocKey(remote)
	}

	// Cheap clauses.
	s.jm = anyBit | anyBit<<16
	for _, v := range j.VisaTypes {
		s.jm |= uint32(visaBitNoAlloc(v))
	}
	if j.Seniority != "" {
		for i, lvl := range SeniorityLevels {
			if eqLower(j.Seniority, lvl) {
				s.jm |= 1 << (16 + i)
				break
			}
		}
	}
	s.annual, s.hasSal = annualUSDNoAlloc(j.Salary)
	switch {
	case !s.hasSal:
		s.salCap = 0
	case !(s.annual < float64(bigSalary-1)): // also NaN, which Reference lets pass
		s.salCap = bigSalary - 1
	case s.annual < 0:
		s.salCap = 0
	default:
		s.salCap = uint32(s.annual)
	}
}

// hasTok reports whether t is one of the job's title tokens.
func (s *jobScratch) hasTok(t uint32) bool {
	if len(s.tok) > len(s.tokSet)/2 {
		return hasID(s.tok, t)
	}
	for i := t * 0x9E3779B1 >> 24; ; i = (i + 1) & 0xff {
		switch s.tokSet[i] {
		case t:
			return true
		case 0:
			return false
		}
	}
}

func (s *jobScratch) addTok(e *entry) {
	if e != nil && !hasID(s.tok, e.id) {
		if len(s.tok) < len(s.tokSet)/2 {
			i := e.id * 0x9E3779B1 >> 24
			for s.tokSet[i] != 0 {
				i = (i + 1) & 0xff
			}
			s.tokSet[i] = e.id
		}
		s.bloom |= bloomBit(e.id)
		s.tok = append(s.tok, e.id)
		s.kwE = append(s.kwE, e)
	}
}

func (s *jobScratch) addLocKey(e *entry) {
	if e == nil {
		return
	}
	s.bloom |= bloomBit(e.id)
	for _, x := range s.locE {
		if x == e {
			return
		}
	}
	s.locE = append(s.locE, e)
}

// appendTokenBytes appends the tokens of s (MATCHING.md §1) to buf and the
// end offset of each to offs.
func appendTokenBytes(buf []byte, offs []int32, s string) ([]byte, []int32) {
	prev := rune(-1)
	inTok := false
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		r = unicode.ToLower(r)
		i += w
		if r == '-' && prev >= 0 && isAlnum(prev) && i < len(s) {
			nr, _ := utf8.DecodeRuneInString(s[i:])
			if isAlnum(unicode.ToLower(nr)) {
				prev = r
				continue
			}
		}
		prev = r
		if isAlnum(r) || r == '+' || r == '#' {
			buf = utf8.AppendRune(buf, r)
			inTok = true
			continue
		}
		if inTok {
			offs = append(offs, int32(len(buf)))
			inTok = false
		}
	}
	if inTok {
		offs = append(offs, int32(len(buf)))
	}
	return buf, offs
}

// appendKey appends key(s) (MATCHING.md §1) to buf.
func appendKey(buf []byte, s string) []byte {
	start := len(buf)
	compStart := start
	space := false
	for _, r := range s {
		switch {
		case r == ',':
			if len(buf) > compStart { // a non-empty component ends
				buf = append(buf, ',')
				compStart = len(buf)
			}
			space = false
		case unicode.IsSpace(r):
			space = len(buf) > compStart
		default:
			if space {
				buf = append(buf, ' ')
				space = false
			}
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
		}
	}
	if len(buf) > start && len(buf) == compStart { // drop the trailing comma
		buf = buf[:len(buf)-1]
	}
	return buf
}

// appendLocation appends the dictionary id (0 when unknown) of each
// component of key(l) to s.locs, and the entry of each known one to s.locE.
func (s *jobScratch) appendLocation(d *dict, l string) {
	buf := s.buf[:0]
	space := false
	for i := 0; i <= len(l); {
		r, w := rune(','), 1 // the end of l ends the last component
		if i < len(l) {
			r, w = utf8.DecodeRuneInString(l[i:])
		}
		i += w
		switch {
		case r == ',':
			if len(buf) > 0 {
				var id uint32
				if e := d.lookup(buf); e != nil {
					id = e.id
					s.addLocKey(e)
				}
				s.locs = append(s.locs, id)
				buf = buf[:0]
			}
			space = false
		case unicode.IsSpace(r):
			space = len(buf) > 0
		default:
			if space {
				buf = append(buf, ' ')
				space = false
			}
			buf = utf8.AppendRune(buf, unicode.ToLower(r))
		}
	}
	s.buf = buf
}

// eqLower reports whether s, lower-cased rune by rune, equals lower.
func eqLower(s, lower string) bool {
	i := 0
	for _, r := range s {
		lr, w := utf8.DecodeRuneInString(lower[i:])
		if w == 0 || unicode.ToLower(r) != lr {
			return false
		}
		i += w
	}
	return i == len(lower)
}

func visaBitNoAlloc(v string) uint16 {
	var b [24]byte
	n := 0
	for _, r := range v {
		if unicode.IsSpace(r) || r == '-' || r == '_' || r == '.' {
			continue
		}
		r = unicode.ToLower(r)
		if n+utf8.RuneLen(r) > len(b) || r < 0 {
			return 0
		}
		n += utf8.EncodeRune(b[n:], r)
	}
	i, ok := visaAliases[string(b[:n])]
	if !ok {
		return 0
	}
	return 1 << i
}

var periodNames = [...]string{"year", "month", "week", "day", "hour"}

// annualUSDNoAlloc is Salary.AnnualUSD without its lower-casing allocations.
func annualUSDNoAlloc(s *Salary) (float64, bool) {
	if s == nil {
		return 0, false
	}
	if s.Currency != "" && !eqLower(s.Currency, "usd") {
		return 0, false
	}
	factor := 1.0
	if s.Period != "" {
		found := false
		for _, p := range periodNames {
			if eqLower(s.Period, p) {
				factor, found = periodFactor[p], true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	v := s.Max
	if v <= 0 {
		v = s.Min
	}
	if v <= 0 {
		return 0, false
	}
	return v * factor, true
}
