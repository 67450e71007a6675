package matcher

import (
	"math"
	"slices"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
	"unsafe"
)

// --- matching ---------------------------------------------------------------

// jobScratch is a job normalised for the index, into reused buffers.
type jobScratch struct {
	buf     []byte
	join    []byte
	offs    []int32 // token end offsets in buf
	tok     []uint32
	kwE     []*entry
	tags    []uint32
	tagE    []*entry
	locs    []uint32 // component ids of every location, concatenated
	locEnd  []int32
	locE    []*entry
	compE   *entry
	co      uint32
	bloom   uint64      // bloomBit of every id above
	tokSet  [256]uint32 // tok as an open-addressing set (0 empty), when it fits
	cand    []unsafe.Pointer
	candVia []uint32
	used    []uint32
	lists   []listRef
	sink    uint64
	remote  bool
	jm      uint32 // visa bits | seniority bits << 16, with anyBit in both
	salCap  uint32 // min salaries up to salCap hold
	annual  float64
	hasSal  bool
}

// Match appends to dst the slot of every filter that matches j and returns
// it; it allocates nothing when dst has the capacity. Resolve slots with IDs.
func (ix *Index) Match(j *Job, dst []uint32) []uint32 {
	s := ix.pool.Get().(*jobScratch)
	s.prepare(&ix.dict, ix.remote, j)
	remote := ix.remote.id

	// Gather the job's posting lists first, then load their headers and
	// first postings in two passes: the loads are independent, so their
	// cache misses overlap instead of queueing list after list.
	s.lists = s.lists[:0]
	for _, e := range s.kwE {
		s.addList(&e.post[kindKw], e.id)
	}
	if s.compE != nil {
		ix.addValueLists(s, kindCompany, s.compE)
	}
	for _, e := range s.tagE {
		ix.addValueLists(s, kindTag, e)
	}
	for _, e := range s.locE {
		ix.addValueLists(s, kindLoc, e)
	}
	s.addList(&ix.always, 0)
	for i := range s.lists {
		r := &s.lists[i]
		r.items = r.pl.items[:r.pl.n.Load()]
	}
	var sink uint64
	for i := range s.lists {
		if l := s.lists[i].items; len(l) > 0 {
			sink |= l[0].need
		}
	}
	s.sink = sink

	// Collect the candidates of every list, checking them in batches.
	for i := range s.lists {
		dst = s.collect(s.lists[i].items, s.lists[i].via, remote, dst)
	}
	dst = s.flush(remote, dst)

	s.compE = nil
	clear(s.kwE)
	clear(s.tagE)
	clear(s.locE)
	clear(s.lists)
	ix.pool.Put(s)
	return dst
}

// listRef is a posting list a job visits and the value it is reached by.
type listRef struct {
	pl    *postings
	items []posting
	via   uint32
}

func (s *jobScratch) addList(p *atomic.Pointer[postings], via uint32) {
	if pl := p.Load(); pl != nil {
		s.lists = append(s.lists, listRef{pl: pl, via: via})
	}
}

// addValueLists adds the lists of the groups posted under the value v of a
// clause kind, alone and paired with each of the job's title tokens.
func (ix *Index) addValueLists(s *jobScratch, kind uint8, v *entry) {
	s.addList(&v.post[kind], v.id)
	if v.pairs.Load()&(1<<kind) == 0 {
		return
	}
	for _, a := range s.kwE {
		if a.pairs.Load()&(1<<(4+kind)) == 0 {
			continue
		}
		if e := ix.pairs.lookup(kind, a.id, v.id); e != nil {
			s.addList(&e.post, v.id)
		}
	}
}

// collect adds the postings of a list whose summary the job satisfies to
// the candidates, checking them whenever a batch is full.
func (s *jobScratch) collect(l []posting, via, remote uint32, dst []uint32) []uint32 {
	bloom := s.bloom
	for i := range l {
		if p := &l[i]; p.need&^bloom == 0 {
			s.cand = append(s.cand, atomic.LoadPointer(&p.data))
			s.candVia = append(s.candVia, via)
			if len(s.cand) == scanBatch {
				dst = s.flush(remote, dst)
			}
		}
	}
	return dst
}

// flush checks the candidates: it loads the first word of each block (the
// loads are independent, so their cache misses overlap), then checks each
// group and runs through its members.
func (s *jobScratch) flush(remote uint32, dst []uint32) []uint32 {
	cand := s.cand
	if len(cand) == 0 {
		return dst
	}
	if len(s.used) < scanBatch {
		s.used = make([]uint32, scanBatch)
	}
	used := s.used[:len(cand)]
	for i, c := range cand {
		used[i] = atomic.LoadUint32((*uint32)(c))
	}
	via := s.candVia[:len(cand)]
	for i, c := range cand {
		w := unsafe.Slice((*uint32)(c), used[i])
		meta := w[hdrMeta]
		if meta&flagExact != 0 || s.holds(w, meta, via[i], remote) {
			dst = s.members(w, meta, dst)
		}
	}
	clear(cand)
	s.cand, s.candVia = cand[:0], s.candVia[:0]
	return dst
}

// scanBatch bounds the candidates of one pass so that their blocks' first
// lines are still in cache when pass 3 reaches them.
const scanBatch = 128

// members appends the live members of a block whose cheap clauses the job
// satisfies: each run whose clauses hold whole, then the plain members
// without branching on the outcome.
func (s *jobScratch) members(w []uint32, meta uint32, dst []uint32) []uint32 {
	ms := metaMem(meta)
	jm, salCap := s.jm, uint64(s.salCap)
	big := math.Inf(1)
	if meta&flagBig != 0 { // members with a min salary over 2^32-2
		big = math.Float64frombits(uint64(w[hdrWords]) | uint64(w[hdrWords+1])<<32)
	}
	if meta&flagRLE != 0 {
		// The runs are immutable: a removal publishes a copy.
		end, dead := int(w[ms]), w[ms+1]
		for i := ms + 2; i < end; {
			minSal, x, n := w[i], w[i+1]&jm, int(w[i+2])
			i += 3
			if x&0xffff != 0 && x>>16 != 0 && (uint64(minSal) <= salCap || minSal == bigSalary && s.hasSal && !(s.annual < big)) {
				if dead == 0 {
					dst = append(dst, w[i:i+n]...)
				} else {
					for _, h := range w[i : i+n] {
						if h != deadSlot {
							dst = append(dst, h)
						}
					}
				}
			}
			i += n
		}
		ms = end
	}
	n := (len(w) - ms) / memberWords
	if n == 0 {
		return dst
	}
	if cap(dst)-len(dst) < n {
		dst = slices.Grow(dst, n)
	}
	out := dst[len(dst) : len(dst)+n]
	if meta&flagBig != 0 {
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
func (s *jobScratch) holds(w []uint32, meta uint32, via, remoteKey uint32) bool {
	i := progStart(meta)
	kind := metaKind(meta)
	// A group posted under each value of its locations or tags is a
	// candidate in each of the job's lists it is in, and accepted through
	// one only: decide that first, so that the other lists cost a look at
	// that clause, not at the whole group.
	if (kind == kindLoc || kind == kindTag) && !s.accepts(w, meta, i, via, remoteKey) {
		return false
	}
	if meta&flagKw != 0 {
		n := int(w[i])
		i++
		for _, t := range w[i : i+n] {
			if !s.hasTok(t) {
				return false
			}
		}
		i += n
	}
	if meta&flagLoc != 0 {
		n := int(w[i])
		i++
		matched := kind == kindLoc // accepts has checked them
		for range n {
			l := int(w[i])
			if !matched && s.locMatch(w[i+2:i+2+l], remoteKey) {
				matched = true
			}
			i += 2 + l
		}
		if !matched {
			return false
		}
	}
	if meta&flagCo != 0 {
		n := int(w[i])
		i++
		if !hasID(w[i:i+n], s.co) {
			return false
		}
		i += n
	}
	if meta&flagExco != 0 {
		n := int(w[i])
		i++
		if hasID(w[i:i+n], s.co) {
			return false
		}
		i += n
	}
	if meta&flagTag != 0 {
		n := int(w[i])
		i++
		if kind != kindTag && !hasAnyID(s.tags, w[i:i+n]) { // accepts has checked a kindTag's
			return false
		}
		i += n
	}
	if meta&flagEx != 0 {
		n := int(w[i])
		i++
		for range n {
			l := int(w[i])
			i++
			all := true
			for _, t := range w[i : i+l] {
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
	}
	return true
}

// accepts reports, for a group posted under each value of its locations
// or tags (its kind), whether the job holds that clause and via is the
// value that accepts the group: the posting component of the first
// location that matches, or the first tag the job has. i is the start of
// the group's clauses.
func (s *jobScratch) accepts(w []uint32, meta uint32, i int, via, remoteKey uint32) bool {
	if meta&flagKw != 0 {
		i += 1 + int(w[i])
	}
	if metaKind(meta) == kindLoc {
		n := int(w[i])
		i++
		for range n {
			l := int(w[i])
			if s.locMatch(w[i+2:i+2+l], remoteKey) {
				return w[i+1] == via
			}
			i += 2 + l
		}
		return false
	}
	// kindTag: the group has tags, and neither locations nor companies.
	if meta&flagExco != 0 {
		i += 1 + int(w[i])
	}
	n := int(w[i])
	i++
	for _, t := range w[i : i+n] {
		if hasID(s.tags, t) {
			return t == via
		}
	}
	return false
}

func (s *jobScratch) locMatch(run []uint32, remoteKey uint32) bool {
	if s.remote && len(run) == 1 && run[0] == remoteKey {
		return true
	}
	start := int32(0)
	for _, end := range s.locEnd {
		if containsRun(s.locs[start:end], run) {
			return true
		}
		start = end
	}
	return false
}

// hasAnyID reports whether list and ids share an id.
func hasAnyID(list, ids []uint32) bool {
	for _, id := range ids {
		if hasID(list, id) {
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
	s.jm = anyBit | anyBit<<16 | uint32(jobVisaBits(j, visaBitNoAlloc))
	if j.Seniority != "" {
		for i, lvl := range seniorityLevels {
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

// appendTokenBytes appends the tokens of s (docs/matching.md §1) to buf and the
// end offset of each to offs.
func appendTokenBytes(buf []byte, offs []int32, s string) ([]byte, []int32) {
	prev := rune(-1)
	inTok := false
	for i := 0; i < len(s); {
		r, w := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, w = utf8.DecodeRuneInString(s[i:])
		}
		r = toLower(r)
		i += w
		if r == '-' && prev >= 0 && alnum(prev) && i < len(s) {
			nr, _ := utf8.DecodeRuneInString(s[i:])
			if alnum(toLower(nr)) {
				prev = r
				continue
			}
		}
		prev = r
		if alnum(r) || r == '+' || r == '#' {
			if r < utf8.RuneSelf {
				buf = append(buf, byte(r))
			} else {
				buf = utf8.AppendRune(buf, r)
			}
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

// toLower is unicode.ToLower, quicker on ASCII.
func toLower(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	return unicode.ToLower(r)
}

// alnum is isAlnum, quicker on ASCII.
func alnum(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || 'A' <= r && r <= 'Z'
	}
	return isAlnum(r)
}

// isSpace is unicode.IsSpace, quicker on ASCII.
func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || '\t' <= r && r <= '\r'
	}
	return unicode.IsSpace(r)
}

// appendKey appends key(s) (docs/matching.md §1) to buf.
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
		case isSpace(r):
			space = len(buf) > compStart
		default:
			if space {
				buf = append(buf, ' ')
				space = false
			}
			buf = appendLower(buf, r)
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
	s.buf = eachComponent(s.buf, l, func(comp []byte) {
		var id uint32
		if e := d.lookup(comp); e != nil {
			id = e.id
			s.addLocKey(e)
		}
		s.locs = append(s.locs, id)
	})
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

// appendLower appends unicode.ToLower(r).
func appendLower(buf []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(buf, byte(r))
	}
	return utf8.AppendRune(buf, unicode.ToLower(r))
}
