package matcher

import (
	"errors"
	"hash/maphash"
	"math"
	"slices"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"
)

// A group's block: hdrWords header words, the float64 min salary of its
// bigSalary members when it has some (flagBig), the hard clauses present
// (each flag's section, in flag order), then the members: with flagRLE,
// the end of the runs, the number of tombstones in them, and the runs
// (min salary, visa | seniority << 16, n, then n slots); then (or without
// flagRLE, only) plain members of memberWords each. See encodeMembers.
const (
	hdrUsed     = 0 // words in use; loaded and stored atomically
	hdrMeta     = 1 // kind | flags | index of the first member word << metaShift
	hdrWords    = 2
	memberWords = 3 // slot (atomic), min salary, visa bits | seniority bits << 16

	kindBits  = 3
	kindMask  = 1<<kindBits - 1
	metaShift = 12
	maxProg   = 1<<(32-metaShift) - hdrWords - 2 - memberWords // words of hard clauses a group can hold
)

// Clause kinds a group can be posted under (the low kindBits of the meta
// word).
const (
	kindKw = iota
	kindCompany
	kindTag
	kindLoc
	nKinds
	kindAlways = kindMask
)

// Flags of the meta word: which hard clauses the group has (each present
// one, in the order of the flags, is a count followed by its items;
// locations are, for each location, its length, its posting component and
// its components; exclude keywords, the clause that costs the most to
// walk, come last, so that a job checks the others without walking past
// them), whether the block holds a big min salary, and whether the
// group's postings guarantee its hard clauses (flagExact: a job that
// reaches it holds them).
const (
	flagKw      = 1 << (kindBits + iota) // sorted set of keyword token ids
	flagLoc                              // locations: count, then (n, posting component, components...) each
	flagCo                               // sorted set of company ids
	flagExco                             // sorted set of excluded company ids
	flagTag                              // sorted set of tag ids
	flagEx                               // exclude keywords: count, then (n, tokens...) each
	flagBig                              // two words after the header: a float64
	flagExact                            // the postings guarantee the hard clauses
	flagRLE                              // the members start with runs (see encodeMembers)
	clauseFlags = flagKw | flagEx | flagLoc | flagCo | flagExco | flagTag
)

func metaKind(meta uint32) uint8 { return uint8(meta & kindMask) }
func metaMem(meta uint32) int    { return int(meta >> metaShift) }
func progStart(meta uint32) int  { return hdrWords + int(meta>>8&2) } // flagBig is 1<<9

// posting is a group in a posting list: the bloomBit of every value the
// group requires, and its block.
type posting struct {
	need uint64
	data unsafe.Pointer // *uint32: the first word of the block; loaded and stored atomically
}

// bloomBit maps a dictionary id to one of 64 bits.
func bloomBit(id uint32) uint64 { return 1 << (uint64(id) * 0x9E3779B97F4A7C15 >> 58) }

// --- compiling a filter against the dictionary ------------------------------

// cfilter is a filter compiled against the dictionary: its hard clauses as
// a canonical prog (the sections of its flags, location posting words
// zero), and its cheap clauses as a member's words.
type cfilter struct {
	flags  uint32 // the clause flags present, and flagBig
	prog   []uint32
	big    float64 // the min salary when minSal is bigSalary
	minSal uint32
	cond   uint32 // visa bits | seniority bits << 16, anyBit for an absent clause
	hash   uint64
}

var errMiss = errors.New("matcher: a string the dictionary does not hold")

// compiler turns Filters into cfilters, into reused buffers.
type compiler struct {
	buf    []byte
	offs   []int32
	p      []uint32
	intern func([]byte) *entry
	d      *dict
	miss   bool
	flat   []uint32   // the values of a clause's entries, one after another
	ends   []int      // the end of each entry in flat
	runs   [][]uint32 // the entries, as slices of flat
}

// runsOf returns the entries recorded in c.flat and c.ends.
func (c *compiler) runsOf() [][]uint32 {
	c.runs = c.runs[:0]
	start := 0
	for _, end := range c.ends {
		c.runs = append(c.runs, c.flat[start:end:end])
		start = end
	}
	return c.runs
}

// id returns the dictionary id of b, interning it when the compiler may,
// else noting the miss.
func (c *compiler) id(b []byte) uint32 {
	if e := c.d.lookup(b); e != nil {
		return e.id
	}
	if c.intern == nil {
		c.miss = true
		return 0
	}
	return c.intern(b).id
}

// compile compiles f into out, whose prog it appends to c.p (so that the
// caller owns c.p's storage) or, when out.prog has capacity, reuses. With a
// nil intern it only looks strings up and returns errMiss when one is
// unknown. It fails as Compile does on an unknown visa code or seniority.
func (c *compiler) compile(d *dict, intern func([]byte) *entry, f *Filter, out *cfilter) error {
	c.d, c.intern, c.miss = d, intern, false
	cond := uint32(0)
	for _, v := range f.VisaTypes {
		bit := visaBitNoAlloc(v)
		if bit == 0 {
			_, err := Compile(*f)
			return err
		}
		cond |= uint32(bit)
	}
	if cond != 0 && f.IncludeUnknownVisa {
		cond |= uint32(unknownVisaBit)
	}
	sen := uint32(0)
	for _, s := range f.Seniority {
		bit := uint32(0)
		for i, lvl := range seniorityLevels {
			if eqLower(s, lvl) {
				bit = 1 << i
				break
			}
		}
		if bit == 0 {
			_, err := Compile(*f)
			return err
		}
		sen |= bit
	}
	if cond == 0 {
		cond = anyBit
	}
	if sen == 0 {
		sen = anyBit
	}
	out.cond = cond | sen<<16
	out.minSal, out.big = 0, 0
	switch {
	case f.MinSalary <= 0:
	case float64(f.MinSalary) < float64(bigSalary):
		out.minSal = uint32(f.MinSalary)
	default:
		out.minSal, out.big = bigSalary, float64(f.MinSalary)
	}

	p := c.p[:0]
	flags := uint32(0)
	if out.big != 0 {
		flags |= flagBig
	}
	// Keywords: a sorted set of token ids.
	c.buf, c.offs = appendTokenBytes(c.buf[:0], c.offs[:0], f.Keywords)
	if len(c.offs) > 0 {
		flags |= flagKw
		start := len(p)
		p = append(p, 0)
		prev := int32(0)
		for _, end := range c.offs {
			p = append(p, c.id(c.buf[prev:end]))
			prev = end
		}
		p = sortSet(p, start)
	}
	// Locations: the locations with components, collapsed (collapse.go);
	// as (length, posting component (chosen later), components) each.
	c.flat, c.ends = c.flat[:0], c.ends[:0]
	for _, l := range f.Locations {
		n := len(c.flat)
		if c.flat = c.appendComponents(c.flat, l); len(c.flat) > n {
			c.ends = append(c.ends, len(c.flat))
		}
	}
	if runs := collapseLocations(c.runsOf()); len(runs) > 0 {
		flags |= flagLoc
		p = append(p, uint32(len(runs)))
		for _, r := range runs {
			p = append(p, uint32(len(r)), 0)
			p = append(p, r...)
		}
	}
	var ok bool
	if p, ok = c.appendKeySet(p, f.Companies); ok {
		flags |= flagCo
	}
	if p, ok = c.appendKeySet(p, f.ExcludeCompanies); ok {
		flags |= flagExco
	}
	if p, ok = c.appendKeySet(p, f.Tags); ok {
		flags |= flagTag
	}
	// Exclude keywords: each entry with tokens as a set, the entries
	// collapsed (collapse.go); as (n, tokens...) each.
	c.flat, c.ends = c.flat[:0], c.ends[:0]
	for _, e := range f.ExcludeKeywords {
		c.buf, c.offs = appendTokenBytes(c.buf[:0], c.offs[:0], e)
		if len(c.offs) == 0 {
			continue
		}
		start := len(c.flat)
		prev := int32(0)
		for _, end := range c.offs {
			c.flat = append(c.flat, c.id(c.buf[prev:end]))
			prev = end
		}
		c.flat = c.flat[:start+len(sortedSet(c.flat[start:]))]
		c.ends = append(c.ends, len(c.flat))
	}
	if runs := collapseExcludes(c.runsOf()); len(runs) > 0 {
		flags |= flagEx
		p = append(p, uint32(len(runs)))
		for _, r := range runs {
			p = append(p, uint32(len(r)))
			p = append(p, r...)
		}
	}
	c.p = p
	out.flags, out.prog = flags, p
	if c.miss {
		return errMiss
	}
	out.hash = hashProg(d.seed, flags, out.big, p)
	return nil
}

// appendKeySet appends the sorted set of the ids of key(k) for each k that
// has one, and reports whether there was one.
func (c *compiler) appendKeySet(p []uint32, keys []string) ([]uint32, bool) {
	start := len(p)
	p = append(p, 0)
	for _, k := range keys {
		c.buf = appendKey(c.buf[:0], k)
		if len(c.buf) > 0 {
			p = append(p, c.id(c.buf))
		}
	}
	if len(p) == start+1 {
		return p[:start], false
	}
	return sortSet(p, start), true
}

// appendComponents appends the id of each component of key(l): the
// components of KeyComponents(l).
func (c *compiler) appendComponents(p []uint32, l string) []uint32 {
	c.buf = eachComponent(c.buf, l, func(comp []byte) { p = append(p, c.id(comp)) })
	return p
}

// eachComponent calls emit with each component of key(l), the components
// of KeyComponents(l), built in buf without allocating; it returns buf for
// reuse. emit must not keep the slice.
func eachComponent(buf []byte, l string, emit func(comp []byte)) []byte {
	buf = buf[:0]
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
				emit(buf)
				buf = buf[:0]
			}
			space = false
		case isSpace(r):
			space = len(buf) > 0
		default:
			if space {
				buf = append(buf, ' ')
				space = false
			}
			buf = appendLower(buf, r)
		}
	}
	return buf
}

func sortSet(p []uint32, start int) []uint32 {
	s := p[start+1:]
	slices.Sort(s)
	s = slices.Compact(s)
	p = p[:start+1+len(s)]
	p[start] = uint32(len(s))
	return p
}

// hashProg hashes a canonical prog (location posting words zero), its
// flags and big.
func hashProg(seed maphash.Seed, flags uint32, big float64, p []uint32) uint64 {
	h := (math.Float64bits(big) ^ uint64(flags&(clauseFlags|flagBig))<<40) * 0x9E3779B97F4A7C15
	if len(p) == 0 {
		return h
	}
	return h ^ maphash.Bytes(seed, unsafe.Slice((*byte)(unsafe.Pointer(&p[0])), 4*len(p)))
}

// clauses locates the parts of a prog.
type clauses struct {
	kws, cos, tags []uint32
	locs           []int // offset of each location's length word
}

// parseProg locates the parts of a prog; the location offsets are appended
// to buf (so that a caller's array can hold them).
func parseProg(flags uint32, p []uint32, buf []int) (c clauses) {
	c.locs = buf
	i := 0
	next := func() []uint32 {
		n := int(p[i])
		l := p[i+1 : i+1+n]
		i += 1 + n
		return l
	}
	if flags&flagKw != 0 {
		c.kws = next()
	}
	if flags&flagLoc != 0 {
		nLoc := int(p[i])
		i++
		for range nLoc {
			c.locs = append(c.locs, i)
			i += 2 + int(p[i])
		}
	}
	if flags&flagCo != 0 {
		c.cos = next()
	}
	if flags&flagExco != 0 {
		next()
	}
	if flags&flagTag != 0 {
		c.tags = next()
	}
	return c
}

// progEqual compares a group's prog with a canonical one, whose location
// posting words are zero.
func progEqual(flags uint32, a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	if flags&flagLoc == 0 {
		return slices.Equal(a, b)
	}
	var lb [4]int
	c := parseProg(flags, b, lb[:0])
	i := 0
	for _, at := range c.locs {
		if !slices.Equal(a[i:at+1], b[i:at+1]) {
			return false
		}
		i = at + 2 // skip the posting word
	}
	return slices.Equal(a[i:], b[i:])
}

// --- groups -----------------------------------------------------------------

// groupMeta is the writer's view of a group; Match sees only its block.
type groupMeta struct {
	blk   unsafe.Pointer // *uint32: the first word of the published block
	cap   uint32         // words of the block
	live  uint32         // members not tombstoned
	dead  uint32         // members tombstoned
	kwKey uint32         // the keyword token posted under (the pair's first half), or 0
}

func (g *groupMeta) data() []uint32 { return unsafe.Slice((*uint32)(g.blk), g.cap) }

// groupTable holds the groups by id (0 is none) and finds them by the hash
// of their clauses: open addressing over group ids, 8 bits of hash and 24
// of id an entry. Writer only.
type groupTable struct {
	g     []groupMeta
	free  []uint32
	t     []uint32 // 0 empty, gTomb deleted
	n     int
	tombs int
}

const gTomb = ^uint32(0)

func (t *groupTable) init() { t.g = make([]groupMeta, 1) }

func gEntry(h uint64, gid uint32) uint32 { return uint32(h>>56)<<24 | gid }

// find returns the group holding exactly cf's clauses, or 0.
func (t *groupTable) find(cf *cfilter) uint32 {
	if len(t.t) == 0 {
		return 0
	}
	fp := uint32(cf.hash>>56) << 24
	mask := uint64(len(t.t) - 1)
	for i := cf.hash & mask; ; i = (i + 1) & mask {
		v := t.t[i]
		if v == 0 {
			return 0
		}
		if v == gTomb || v&^0xffffff != fp {
			continue
		}
		gid := v & 0xffffff
		w := t.g[gid].data()
		meta := w[hdrMeta]
		if meta&(clauseFlags|flagBig) != cf.flags {
			continue
		}
		if cf.flags&flagBig != 0 && math.Float64frombits(uint64(w[hdrWords])|uint64(w[hdrWords+1])<<32) != cf.big {
			continue
		}
		if progEqual(cf.flags, w[progStart(meta):metaMem(meta)], cf.prog) {
			return gid
		}
	}
}

// add registers a new group under hash h and returns its id.
func (t *groupTable) add(ix *Index, h uint64, g groupMeta) uint32 {
	t.reserve(ix, 1) // before g is registered: a rehash places the others
	var gid uint32
	if n := len(t.free); n > 0 {
		gid = t.free[n-1]
		t.free = t.free[:n-1]
		t.g[gid] = g
	} else {
		gid = uint32(len(t.g))
		t.g = append(t.g, g)
	}
	t.place(h, gid)
	t.n++
	return gid
}

// reserve grows the table, if needed, to hold more groups.
func (t *groupTable) reserve(ix *Index, more int) {
	if (t.n+t.tombs+more)*4 <= len(t.t)*3 {
		return
	}
	size := tableSize(t.n, more)
	t.t, t.tombs = make([]uint32, size), 0
	for gid := 1; gid < len(t.g); gid++ {
		if t.g[gid].blk != nil {
			t.place(ix.groupHash(uint32(gid)), uint32(gid))
		}
	}
}

func (t *groupTable) place(h uint64, gid uint32) {
	mask := uint64(len(t.t) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		if v := t.t[i]; v == 0 || v == gTomb {
			if v == gTomb {
				t.tombs--
			}
			t.t[i] = gEntry(h, gid)
			return
		}
	}
}

// remove forgets gid, whose hash is h, and frees its id.
func (t *groupTable) remove(h uint64, gid uint32) {
	mask := uint64(len(t.t) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		v := t.t[i]
		if v == 0 {
			break
		}
		if v != gTomb && v&0xffffff == gid {
			t.t[i] = gTomb
			t.tombs++
			t.n--
			break
		}
	}
	t.g[gid] = groupMeta{}
	t.free = append(t.free, gid)
}

// groupHash recomputes the hash of a group's clauses.
func (ix *Index) groupHash(gid uint32) uint64 {
	w := ix.groups.g[gid].data()
	meta := w[hdrMeta]
	q := append(ix.tmp[:0], w[progStart(meta):metaMem(meta)]...)
	var lb [4]int
	c := parseProg(meta, q, lb[:0])
	for _, at := range c.locs {
		q[at+1] = 0
	}
	ix.tmp = q
	big := 0.0
	if meta&flagBig != 0 {
		big = math.Float64frombits(uint64(w[hdrWords]) | uint64(w[hdrWords+1])<<32)
	}
	return hashProg(ix.dict.seed, meta, big, q)
}

// groupLocked returns the group holding exactly cf's clauses, creating and
// posting it (with room for one member) when new.
func (ix *Index) groupLocked(cf *cfilter) uint32 {
	if gid := ix.groups.find(cf); gid != 0 {
		return gid
	}
	size := progStart(cf.flags) + len(cf.prog) + memberWords
	data := make([]uint32, size)
	g := ix.initBlock(data, cf)
	gid := ix.groups.add(ix, cf.hash, g)
	ix.eachPostingList(gid, func(l *atomic.Pointer[postings], p posting) { appendPosting(l, p) })
	return gid
}

// initBlock writes the header and clauses of a new group's block, chooses
// what it is posted under, and returns its writer record. The counts of
// the group's values must include it.
func (ix *Index) initBlock(data []uint32, cf *cfilter) groupMeta {
	d := &ix.dict
	ps := progStart(cf.flags)
	memStart := ps + len(cf.prog)
	prog := data[ps:memStart]
	copy(prog, cf.prog)
	if cf.flags&flagBig != 0 {
		bits := math.Float64bits(cf.big)
		data[hdrWords], data[hdrWords+1] = uint32(bits), uint32(bits>>32)
	}
	var lb [4]int
	c := parseProg(cf.flags, prog, lb[:0])

	// Post the group under a pair (a, b): a is the keyword token that the
	// fewest stored filters require, b each value of one of the clauses of
	// which the job must have a value: companies (the most selective), else
	// locations (each one's rarest component), else tags. Either half may be
	// absent; a group with neither goes to the list every job scans.
	g := groupMeta{blk: unsafe.Pointer(&data[0]), cap: uint32(len(data))}
	kind, cost := uint32(kindAlways), int32(math.MaxInt32)
	for _, t := range c.kws {
		if df := d.df[t][kindKw]; df < cost {
			kind, cost, g.kwKey = kindKw, df, t
		}
	}
	for _, at := range c.locs {
		best, bestDF := uint32(0), int32(math.MaxInt32)
		for _, comp := range prog[at+2 : at+2+int(prog[at])] {
			if df := d.df[comp][kindLoc]; df < bestDF {
				best, bestDF = comp, df
			}
		}
		prog[at+1] = best
	}
	switch {
	case len(c.cos) > 0:
		kind = kindCompany
	case len(c.locs) > 0:
		kind = kindLoc
	case len(c.tags) > 0:
		kind = kindTag
	}
	// Exact: reaching the group through its postings implies its clauses.
	// The keyword half of the pair guarantees one keyword; a company or tag
	// list guarantees that value, the only one of its clause; locations
	// need their runs checked.
	exact := cf.flags&(flagEx|flagExco|flagLoc) == 0 && len(c.kws) <= 1
	switch kind {
	case kindCompany:
		exact = exact && len(c.cos) == 1 && cf.flags&flagTag == 0
	case kindTag:
		exact = exact && len(c.tags) == 1
	}
	meta := kind | cf.flags | uint32(memStart)<<metaShift
	if exact {
		meta |= flagExact
	}
	data[hdrUsed] = uint32(memStart)
	data[hdrMeta] = meta
	return g
}

// blockNeed returns the summary a group's postings carry.
func blockNeed(data []uint32) uint64 {
	meta := data[hdrMeta]
	prog := data[progStart(meta):metaMem(meta)]
	var lb [4]int
	c := parseProg(meta, prog, lb[:0])
	var need uint64
	for _, t := range c.kws {
		need |= bloomBit(t)
	}
	if len(c.locs) == 1 {
		at := c.locs[0]
		for _, comp := range prog[at+2 : at+2+int(prog[at])] {
			need |= bloomBit(comp)
		}
	}
	if len(c.cos) == 1 {
		need |= bloomBit(c.cos[0])
	}
	if len(c.tags) == 1 {
		need |= bloomBit(c.tags[0])
	}
	return need
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

// reservePostings makes room for more postings in a list, copying it once.
func reservePostings(p *atomic.Pointer[postings], more int) {
	pl := p.Load()
	n := 0
	var cur []posting
	if pl != nil {
		n = int(pl.n.Load())
		if n+more <= len(pl.items) {
			return
		}
		cur = pl.items[:n]
	}
	np := &postings{items: make([]posting, n+more)}
	copy(np.items, cur)
	np.n.Store(uint32(n))
	p.Store(np)
}

// countLocked adds delta to the per-kind counts of the prog's values.
func (ix *Index) countLocked(flags uint32, p []uint32, delta int32) {
	countInto(ix.dict.df, flags, p, delta)
}

// countInto adds delta to the per-kind counts in df of the prog's values;
// df must be long enough.
func countInto(df [][nKinds]int32, flags uint32, p []uint32, delta int32) {
	var lb [4]int
	c := parseProg(flags, p, lb[:0])
	for _, t := range c.kws {
		df[t][kindKw] += delta
	}
	for _, t := range c.cos {
		df[t][kindCompany] += delta
	}
	for _, t := range c.tags {
		df[t][kindTag] += delta
	}
	for _, at := range c.locs {
		for _, comp := range p[at+2 : at+2+int(p[at])] {
			df[comp][kindLoc] += delta
		}
	}
}

// eachPostingList calls fn with every posting list the group is (to be)
// posted in and its posting there, creating pair lists as needed.
func (ix *Index) eachPostingList(gid uint32, fn func(*atomic.Pointer[postings], posting)) {
	d := &ix.dict
	g := &ix.groups.g[gid]
	data := g.data()
	p := posting{need: blockNeed(data), data: g.blk}
	meta := data[hdrMeta]
	switch metaKind(meta) {
	case kindAlways:
		fn(&ix.always, p)
		return
	case kindKw:
		fn(&d.byID[g.kwKey].post[kindKw], p)
		return
	}
	prog := data[progStart(meta):metaMem(meta)]
	var lb [4]int
	c := parseProg(meta, prog, lb[:0])
	var keys []uint32
	kind := metaKind(meta)
	switch kind {
	case kindCompany:
		keys = c.cos
	case kindTag:
		keys = c.tags
	case kindLoc:
		var buf [4]uint32
		keys = buf[:0]
		for _, at := range c.locs {
			keys = append(keys, prog[at+1])
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
	}
	for _, b := range keys {
		if g.kwKey == 0 {
			fn(&d.byID[b].post[kind], p)
			continue
		}
		fn(&ix.pairs.get(d, kind, g.kwKey, b).post, p)
	}
}

// member is a member's words.
type member struct{ slot, minSal, cond uint32 }

func cmpMember(a, b member) int {
	if a.minSal != b.minSal {
		return cmpU32(a.minSal, b.minSal)
	}
	if a.cond != b.cond {
		return cmpU32(a.cond, b.cond)
	}
	return cmpU32(a.slot, b.slot)
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// memberRegion returns the words the members (sorted by cmpMember) take,
// and whether as runs: runs when that is smaller than a plain list.
func memberRegion(mem []member) (int, bool) {
	runs := 0
	for i := range mem {
		if i == 0 || mem[i].minSal != mem[i-1].minSal || mem[i].cond != mem[i-1].cond {
			runs++
		}
	}
	if rle := 2 + 3*runs + len(mem); rle < memberWords*len(mem) {
		return rle, true
	}
	return memberWords * len(mem), false
}

// encodeMembers writes the member region from data[ms] on, as runs or as
// a plain list, sets the block's used length, and calls at with the word
// of each member's slot.
func encodeMembers(data []uint32, ms int, mem []member, rle bool, at func(member, uint32)) {
	w := ms
	if rle {
		w += 2
		for i := 0; i < len(mem); {
			j := i + 1
			for j < len(mem) && mem[j].minSal == mem[i].minSal && mem[j].cond == mem[i].cond {
				j++
			}
			data[w], data[w+1], data[w+2] = mem[i].minSal, mem[i].cond, uint32(j-i)
			w += 3
			for _, m := range mem[i:j] {
				data[w] = m.slot
				at(m, uint32(w))
				w++
			}
			i = j
		}
		data[ms], data[ms+1] = uint32(w), 0
		data[hdrMeta] |= flagRLE
	} else {
		for _, m := range mem {
			data[w], data[w+1], data[w+2] = m.slot, m.minSal, m.cond
			at(m, uint32(w))
			w += memberWords
		}
		data[hdrMeta] &^= flagRLE
	}
	data[hdrUsed] = uint32(w)
}

// appendMemberLocked appends a member to the group's block, in place beyond
// the published length, or in a rebuilt block with room to spare.
func (ix *Index) appendMemberLocked(gid uint32, rec *slotRec, m [memberWords]uint32) {
	g := &ix.groups.g[gid]
	data := g.data()
	used := data[hdrUsed]
	if int(used)+memberWords > len(data) {
		ix.rebuildLocked(gid, int(max(g.live, 1)))
		data = g.data()
		used = data[hdrUsed]
	}
	copy(data[used:], m[:])
	rec.gid, rec.pos = gid, used
	atomic.StoreUint32(&data[hdrUsed], used+memberWords)
	g.live++
}

// rebuildLocked publishes a new block for the group: its live members
// sorted, as runs when that is smaller, and room for extra members.
func (ix *Index) rebuildLocked(gid uint32, extra int) {
	g := &ix.groups.g[gid]
	old := g.data()
	meta := old[hdrMeta]
	ms := metaMem(meta)
	mem := make([]member, 0, g.live)
	used := int(old[hdrUsed])
	at := ms
	if meta&flagRLE != 0 {
		end := int(old[ms])
		for at = ms + 2; at < end; {
			minSal, cond, n := old[at], old[at+1], int(old[at+2])
			at += 3
			for _, h := range old[at : at+n] {
				if h != deadSlot {
					mem = append(mem, member{h, minSal, cond})
				}
			}
			at += n
		}
	}
	for ; at < used; at += memberWords {
		if h := old[at]; h != deadSlot {
			mem = append(mem, member{h, old[at+1], old[at+2]})
		}
	}
	slices.SortFunc(mem, cmpMember)
	words, rle := memberRegion(mem)
	nd := make([]uint32, ms+words+extra*memberWords)
	copy(nd, old[:ms])
	encodeMembers(nd, ms, mem, rle, func(m member, at uint32) { ix.recAt(m.slot & slotMask).pos = at })
	g.dead = 0
	ix.swapBlockLocked(gid, nd)
}

// swapBlockLocked points the group and its postings at a new block.
func (ix *Index) swapBlockLocked(gid uint32, nd []uint32) {
	g := &ix.groups.g[gid]
	oldP := g.blk
	g.blk, g.cap = unsafe.Pointer(&nd[0]), uint32(len(nd))
	ix.eachPostingList(gid, func(l *atomic.Pointer[postings], _ posting) {
		list := loadPostings(l)
		for i := range list {
			if atomic.LoadPointer(&list[i].data) == oldP {
				atomic.StorePointer(&list[i].data, unsafe.Pointer(&nd[0]))
			}
		}
	})
}

// dropMemberLocked tombstones rec's member, uncounts its clauses, and
// compacts or unposts its group when that pays. A member of the runs is
// tombstoned in a copy of the block (the runs are immutable once
// published: Match copies them whole); one of the plain tail in place.
func (ix *Index) dropMemberLocked(rec *slotRec) {
	gid := rec.gid
	g := &ix.groups.g[gid]
	data := g.data()
	meta := data[hdrMeta]
	ms := metaMem(meta)
	if meta&flagRLE != 0 && rec.pos < data[ms] {
		nd := make([]uint32, len(data))
		copy(nd, data[:data[hdrUsed]])
		nd[rec.pos] = deadSlot
		nd[ms+1]++
		ix.swapBlockLocked(gid, nd)
		data = nd
	} else {
		atomic.StoreUint32(&data[rec.pos], deadSlot)
	}
	rec.gid = 0
	g.live--
	g.dead++
	ix.countLocked(meta, data[progStart(meta):ms], -1)
	switch {
	case g.live == 0:
		ix.unpostLocked(gid)
	case g.dead > 8 && g.dead > g.live:
		ix.rebuildLocked(gid, 0)
	}
}

func (ix *Index) unpostLocked(gid uint32) {
	p := ix.groups.g[gid].blk
	ix.eachPostingList(gid, func(l *atomic.Pointer[postings], _ posting) {
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
	ix.groups.remove(ix.groupHash(gid), gid)
}
