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
)

// Index is the fast matcher: it returns exactly what Compiled.Matches (and so
// Reference) returns, in time that grows with the filters that match a job,
// not with the filters stored.
//
// Structure. Filters whose "hard" clauses (keywords, exclude keywords,
// locations, companies, exclude companies, tags) are identical share a group;
// a group's clauses are packed once into an array of interned ids. Its
// members differ only in the cheap clauses (visa and seniority bit sets, an
// integral min salary) and are packed 12 bytes each, so a job checks a
// group's hard clauses once and then scans its members sequentially. Each
// group is posted under the values of one of its required clauses, the one
// whose values are rarest among the stored filters: the rarest keyword token,
// or every company, every tag, or the rarest component of every location. A
// group without hard clauses goes to a short list every job scans. A job
// visits only the posting lists of its own title tokens, company, tags and
// location components; a group reached through several of them is accepted
// through one only (the first of its clause's values that the job has).
//
// Concurrency. Match never takes a lock and never waits: every structure it
// reads is published through atomic pointers, appended in place beyond the
// published length or copied on write. Add, Update and Remove serialise among
// themselves on one writer mutex and never block Match. A removed member is
// tombstoned in place. A filter added, updated or removed while a Match runs
// may be reported by it as before or after the change (an updated one
// possibly twice); every other filter is reported exactly as stored.
//
// Slots. Match reports a filter by its slot: 24 bits of index, 8 bits of
// generation. A removed filter's index is reused only after at least
// slotReuseDelay later removals, with its generation bumped, and IDs drops a
// slot whose generation is no longer current, so a slot held across removals
// resolves to nothing rather than to another filter's id (an index would
// have to be reused 256 times, i.e. over a million removals, between Match
// and IDs for it to resolve wrongly).
type Index struct {
	mu sync.Mutex // serialises writers; Match never takes it

	dict   dict
	always atomic.Pointer[[]posting] // groups without a hard clause

	groups map[uint64]*group // by hash of prog; writer only
	byID   map[string]uint32 // filter id -> slot; writer only
	slots  atomic.Pointer[[]*slotChunk]
	free   []uint32 // FIFO of freed slots (with their old generation); writer only
	freeHd int
	next   uint32 // next never-used slot index; writer only
	n      atomic.Int64

	remote *entry // the dictionary entry of "remote"
	pool   sync.Pool
	tmp    []uint32 // writer scratch
}

// ErrNotFound is returned by Update for an id the index does not hold.
var ErrNotFound = errors.New("matcher: filter not found")

// ErrFull is returned by Add when the index holds as many filters as its
// slots can address (16,777,215).
var ErrFull = errors.New("matcher: index full")

const (
	slotBits       = 24
	slotMask       = 1<<slotBits - 1
	maxSlots       = slotMask // the all-ones index is never used: deadSlot
	deadSlot       = ^uint32(0)
	chunkBits      = 12
	chunkSize      = 1 << chunkBits
	slotReuseDelay = 4096

	bigSalary = ^uint32(0) // member minSal: compare group.big instead
	anyBit    = 1 << 15    // member visa/sen bit that every job has: the clause is absent
)

// clause kinds a group can be posted under.
const (
	kindKw = iota
	kindCompany
	kindTag
	kindLoc
	nKinds
	kindAlways = -1
)

type slotRec struct {
	id  string // immutable
	gen uint32 // immutable
	g   *group // writer only
	pos int32  // writer only: index in g's members
}

type slotChunk [chunkSize]atomic.Pointer[slotRec]

// member is one filter of a group: its slot and its cheap clauses.
type member struct {
	slot   uint32 // deadSlot once removed; read and written atomically
	minSal uint32 // min_salary in USD a year, 0 absent, bigSalary: see group.big
	visa   uint16 // visa bits, or anyBit when the clause is absent
	sen    uint16 // seniority bits, or anyBit when the clause is absent
}

// posting is a group in a posting list, with the bits of the values the
// group requires, so that most groups a job does not satisfy are passed over
// without touching them.
type posting struct {
	need uint64 // bloomBit of every value the group requires
	g    *group
}

// bloomBit maps a dictionary id to one of 64 bits.
func bloomBit(id uint32) uint64 { return 1 << (uint64(id) * 0x9E3779B97F4A7C15 >> 58) }

type group struct {
	// prog packs the hard clauses (interned ids):
	//   nKw kw... nEx (len tok...)... nLoc (len post comp...)... nCo co... nXc xc... nTag tag...
	// where post is the component the location is posted under.
	prog  []uint32
	big   float64 // min_salary of members with minSal == bigSalary
	kind  int8    // clause posted under, or kindAlways
	kwKey uint32  // the keyword token posted under (kind == kindKw)
	need  uint64  // bloomBit of every value required: all keywords, the only location's components, the only company, the only tag
	mem   atomic.Pointer[[]member]

	hash uint64 // writer only from here on
	next *group
	live int32
	dead int32
}

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{groups: make(map[uint64]*group), byID: make(map[string]uint32)}
	ix.dict.init()
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
// index holds no filter under id, and as Add does.
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
	h, ok := ix.byID[id]
	if !ok {
		return false
	}
	rec := ix.rec(h)
	ix.dropMemberLocked(rec)
	ix.chunk(h & slotMask)[h&slotMask&(chunkSize-1)].Store(nil)
	delete(ix.byID, id)
	ix.free = append(ix.free, h)
	ix.n.Add(-1)
	return true
}

func (ix *Index) putLocked(id string, c *Compiled, mustExist bool) error {
	h, exists := ix.byID[id]
	if mustExist && !exists {
		return fmt.Errorf("update %q: %w", id, ErrNotFound)
	}
	var rec *slotRec
	if exists {
		rec = ix.rec(h)
		ix.dropMemberLocked(rec)
	} else {
		var err error
		h, err = ix.newSlotLocked()
		if err != nil {
			return err
		}
		rec = &slotRec{id: id, gen: h >> slotBits}
		ix.byID[rec.id] = h
		ix.chunk(h & slotMask)[h&slotMask&(chunkSize-1)].Store(rec)
		ix.n.Add(1)
	}
	m := member{slot: h, visa: uint16(c.Visa), sen: uint16(c.Seniority)}
	if m.visa == 0 {
		m.visa = anyBit
	}
	if m.sen == 0 {
		m.sen = anyBit
	}
	big := 0.0
	switch {
	case c.MinSalary <= 0:
	case c.MinSalary < float64(bigSalary):
		m.minSal = uint32(c.MinSalary)
	default:
		m.minSal, big = bigSalary, c.MinSalary
	}
	g := ix.groupLocked(c, big)
	ix.appendMemberLocked(g, rec, m)
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

func (ix *Index) chunk(idx uint32) *slotChunk {
	chunks := *ix.slots.Load()
	return chunks[idx>>chunkBits]
}

func (ix *Index) rec(h uint32) *slotRec {
	return ix.chunk(h & slotMask)[h&slotMask&(chunkSize-1)].Load()
}

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
		p = append(p, uint32(len(loc)), 0) // the posting component is chosen below
		for _, comp := range loc {
			p = append(p, d.intern(comp).id)
		}
	}
	p = appendKeySet(p, d, c.Companies)
	p = appendKeySet(p, d, c.ExcludeCompanies)
	p = appendKeySet(p, d, c.Tags)
	ix.tmp = p

	// Count the filter's values per clause kind: the selectivity estimate.
	cur := progCursor{p: p}
	kws := cur.list()
	cur.skipExcludes()
	nLoc := int(cur.word())
	for range nLoc {
		l := int(cur.word())
		cur.pos++
		for _, comp := range p[cur.pos : cur.pos+l] {
			d.byID[comp].df[kindLoc]++
		}
		cur.pos += l
	}
	cos := cur.list()
	cur.list()
	tags := cur.list()
	for _, t := range kws {
		d.byID[t].df[kindKw]++
	}
	for _, t := range cos {
		d.byID[t].df[kindCompany]++
	}
	for _, t := range tags {
		d.byID[t].df[kindTag]++
	}

	h := hashProg(d.seed, p, big)
	for g := ix.groups[h]; g != nil; g = g.next {
		if g.big == big && progEqual(g.prog, p, locStart) {
			return g
		}
	}
	g := &group{prog: slices.Clone(p), big: big, hash: h}
	g.next = ix.groups[h]
	ix.groups[h] = g
	g.mem.Store(new([]member))

	// Post the group under the clause whose values the fewest stored
	// filters share: a proxy for how often jobs carry them.
	bestKind, bestCost := kindAlways, int64(math.MaxInt64)
	for _, t := range kws {
		if df := int64(d.byID[t].df[kindKw]); df < bestCost {
			bestKind, bestCost, g.kwKey = kindKw, df, t
		}
	}
	if len(cos) > 0 {
		var sum int64
		for _, t := range cos {
			sum += int64(d.byID[t].df[kindCompany])
		}
		if sum < bestCost {
			bestKind, bestCost = kindCompany, sum
		}
	}
	if len(tags) > 0 {
		var sum int64
		for _, t := range tags {
			sum += int64(d.byID[t].df[kindTag])
		}
		if sum < bestCost {
			bestKind, bestCost = kindTag, sum
		}
	}
	if nLoc > 0 {
		var sum int64
		q := g.prog
		i := locStart + 1
		for range nLoc {
			l := int(q[i])
			best, bestDF := uint32(0), int32(math.MaxInt32)
			for _, comp := range q[i+2 : i+2+l] {
				if df := d.byID[comp].df[kindLoc]; df < bestDF {
					best, bestDF = comp, df
				}
			}
			q[i+1] = best
			sum += int64(bestDF)
			i += 2 + l
		}
		if sum < bestCost {
			bestKind = kindLoc
		}
	}
	g.kind = int8(bestKind)
	for _, t := range kws {
		g.need |= bloomBit(t)
	}
	if nLoc == 1 {
		l := int(g.prog[locStart+1])
		for _, comp := range g.prog[locStart+3 : locStart+3+l] {
			g.need |= bloomBit(comp)
		}
	}
	if len(cos) == 1 {
		g.need |= bloomBit(cos[0])
	}
	if len(tags) == 1 {
		g.need |= bloomBit(tags[0])
	}
	if g.kind == kindAlways {
		publishAppend(&ix.always, g)
	} else {
		for _, e := range ix.postingKeys(g) {
			publishAppend(&e.post[g.kind], g)
		}
	}
	return g
}

// sortSet sorts and de-duplicates the set that starts with its length word
// at p[start] and runs to the end of p.
func sortSet(p []uint32, start int) []uint32 {
	s := p[start+1:]
	slices.Sort(s)
	s = slices.Compact(s)
	p = p[:start+1+len(s)]
	p[start] = uint32(len(s))
	return p
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

func appendKeySet(p []uint32, d *dict, keys []string) []uint32 {
	start := len(p)
	p = append(p, 0)
	for _, k := range keys {
		p = append(p, d.intern(k).id)
	}
	return sortSet(p, start)
}

// postingKeys returns the dict entries g is posted under, each once.
func (ix *Index) postingKeys(g *group) []*entry {
	d := &ix.dict
	var ids []uint32
	cur := progCursor{p: g.prog}
	cur.list()
	cur.skipExcludes()
	nLoc := int(cur.word())
	for range nLoc {
		l := int(cur.word())
		if g.kind == kindLoc {
			ids = append(ids, g.prog[cur.pos])
		}
		cur.pos += 1 + l
	}
	cos := cur.list()
	cur.list()
	tags := cur.list()
	switch g.kind {
	case kindKw:
		ids = append(ids, g.kwKey)
	case kindCompany:
		ids = append(ids, cos...)
	case kindTag:
		ids = append(ids, tags...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]*entry, len(ids))
	for i, id := range ids {
		out[i] = d.byID[id]
	}
	return out
}

func (ix *Index) appendMemberLocked(g *group, rec *slotRec, m member) {
	ms := *g.mem.Load()
	rec.g, rec.pos = g, int32(len(ms))
	grown := append(ms, m) // in place beyond the published length, or a copy
	g.mem.Store(&grown)
	g.live++
}

// dropMemberLocked tombstones rec's member, uncounts its clauses, and
// compacts or unposts its group when that pays.
func (ix *Index) dropMemberLocked(rec *slotRec) {
	g := rec.g
	ms := *g.mem.Load()
	atomic.StoreUint32(&ms[rec.pos].slot, deadSlot)
	rec.g = nil
	g.live--
	g.dead++
	ix.uncountLocked(g)
	switch {
	case g.live == 0:
		ix.unpostLocked(g)
	case g.dead > 8 && g.dead > g.live:
		live := make([]member, 0, g.live)
		for i := range ms {
			if s := atomic.LoadUint32(&ms[i].slot); s != deadSlot {
				ix.rec(s).pos = int32(len(live))
				live = append(live, ms[i])
			}
		}
		g.mem.Store(&live)
		g.dead = 0
	}
}

func (ix *Index) uncountLocked(g *group) {
	d := &ix.dict
	cur := progCursor{p: g.prog}
	for _, t := range cur.list() {
		d.byID[t].df[kindKw]--
	}
	cur.skipExcludes()
	nLoc := int(cur.word())
	for range nLoc {
		l := int(cur.word())
		for _, comp := range g.prog[cur.pos+1 : cur.pos+1+l] {
			d.byID[comp].df[kindLoc]--
		}
		cur.pos += 1 + l
	}
	for _, t := range cur.list() {
		d.byID[t].df[kindCompany]--
	}
	cur.list()
	for _, t := range cur.list() {
		d.byID[t].df[kindTag]--
	}
}

func (ix *Index) unpostLocked(g *group) {
	if g.kind == kindAlways {
		publishRemove(&ix.always, g)
	} else {
		for _, e := range ix.postingKeys(g) {
			publishRemove(&e.post[g.kind], g)
		}
	}
	prev := (*group)(nil)
	for x := ix.groups[g.hash]; x != nil; prev, x = x, x.next {
		if x == g {
			switch {
			case prev != nil:
				prev.next = x.next
			case x.next != nil:
				ix.groups[g.hash] = x.next
			default:
				delete(ix.groups, g.hash)
			}
			break
		}
	}
}

// publishAppend appends g to the list p points to, writing beyond the
// published length (no reader looks there) or into a copy, then publishing.
func publishAppend(p *atomic.Pointer[[]posting], g *group) {
	var cur []posting
	if old := p.Load(); old != nil {
		cur = *old
	}
	grown := append(cur, posting{need: g.need, g: g})
	p.Store(&grown)
}

// publishRemove publishes a copy of the list without g.
func publishRemove(p *atomic.Pointer[[]posting], g *group) {
	old := p.Load()
	if old == nil {
		return
	}
	out := make([]posting, 0, len(*old))
	for _, x := range *old {
		if x.g != g {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		p.Store(nil)
		return
	}
	p.Store(&out)
}

// hashProg hashes a candidate prog (location posting words zero) and big.
func hashProg(seed maphash.Seed, p []uint32, big float64) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var b [8]byte
	for _, w := range p {
		b[0], b[1], b[2], b[3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
		h.Write(b[:4])
	}
	bits := math.Float64bits(big)
	for i := range 8 {
		b[i] = byte(bits >> (8 * i))
	}
	h.Write(b[:])
	return h.Sum64()
}

type progCursor struct {
	p   []uint32
	pos int
}

func (c *progCursor) word() uint32 {
	w := c.p[c.pos]
	c.pos++
	return w
}

func (c *progCursor) list() []uint32 {
	n := int(c.word())
	l := c.p[c.pos : c.pos+n]
	c.pos += n
	return l
}

func (c *progCursor) skipExcludes() {
	n := int(c.word())
	for range n {
		c.pos += int(c.word())
	}
}

// --- the dictionary ---------------------------------------------------------

// entry is one interned string: a keyword token, a company, tag or location
// component key, or a location component. Ids start at 1; 0 is "unknown".
type entry struct {
	key  string
	id   uint32
	hash uint64
	post [nKinds]atomic.Pointer[[]posting] // groups posted under this value, per clause kind
	df   [nKinds]int32                     // filters holding this value, per clause kind; writer only
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
	bloom  uint64 // bloomBit of every id above
	remote bool
	jv, js uint16
	salCap uint32 // min salaries up to salCap hold
	annual float64
	hasSal bool
}

// Match appends to dst the slot of every filter that matches j and returns
// it; it allocates nothing when dst has the capacity. Resolve slots with IDs.
func (ix *Index) Match(j *Job, dst []uint32) []uint32 {
	s := ix.pool.Get().(*jobScratch)
	s.prepare(&ix.dict, ix.remote, j)
	for _, e := range s.kwE {
		dst = ix.scan(e.post[kindKw].Load(), s, e.id, dst)
	}
	if s.compE != nil {
		dst = ix.scan(s.compE.post[kindCompany].Load(), s, s.co, dst)
	}
	for _, e := range s.tagE {
		dst = ix.scan(e.post[kindTag].Load(), s, e.id, dst)
	}
	for _, e := range s.locE {
		dst = ix.scan(e.post[kindLoc].Load(), s, e.id, dst)
	}
	dst = ix.scan(ix.always.Load(), s, 0, dst)
	s.compE = nil
	clear(s.kwE)
	clear(s.tagE)
	clear(s.locE)
	ix.pool.Put(s)
	return dst
}

func (ix *Index) scan(list *[]posting, s *jobScratch, via uint32, dst []uint32) []uint32 {
	if list == nil {
		return dst
	}
	jv, js, salCap, bloom := s.jv, s.js, s.salCap, s.bloom
	for _, p := range *list {
		if p.need&^bloom != 0 {
			continue
		}
		g := p.g
		if !s.holds(g, via, ix.remote.id) {
			continue
		}
		ms := *g.mem.Load()
		for i := range ms {
			m := &ms[i]
			if m.visa&jv == 0 || m.sen&js == 0 {
				continue
			}
			if m.minSal > salCap && (m.minSal != bigSalary || !s.hasSal || s.annual < g.big) {
				continue
			}
			if h := atomic.LoadUint32(&m.slot); h != deadSlot {
				dst = append(dst, h)
			}
		}
	}
	return dst
}

// holds reports whether the job satisfies g's hard clauses, and, when g is
// posted under several values, whether via is the one that accepts it.
func (s *jobScratch) holds(g *group, via, remoteKey uint32) bool {
	p := g.prog
	i := 0
	n := int(p[i])
	i++
	for _, t := range p[i : i+n] {
		if !hasID(s.tok, t) {
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
			if !hasID(s.tok, t) {
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
				if g.kind == kindLoc && post != via {
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
				return g.kind != kindTag || t == via
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
	s.jv = anyBit
	for _, v := range j.VisaTypes {
		s.jv |= visaBitNoAlloc(v)
	}
	s.js = anyBit
	if j.Seniority != "" {
		for i, lvl := range SeniorityLevels {
			if eqLower(j.Seniority, lvl) {
				s.js |= 1 << i
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

func (s *jobScratch) addTok(e *entry) {
	if e != nil && !hasID(s.tok, e.id) {
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
