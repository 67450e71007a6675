package matcher

import (
	"hash/maphash"
	"sync/atomic"
)

// --- the dictionary ---------------------------------------------------------

// entry is one interned string: a keyword token, a company, tag or location
// component key, or a location component. Ids start at 1; 0 is "unknown".
type entry struct {
	key   string
	id    uint32
	hash  uint64
	post  [nKinds]atomic.Pointer[postings] // groups posted under this value alone, per clause kind
	pairs atomic.Uint32                    // bit k: a pair (x, this) of kind k exists; bit 4+k: a pair (this, x)
}

// dict interns strings. Lookups are lock-free (an open-addressing table
// published through an atomic pointer, grown by copy); inserts happen under
// the Index writer mutex. Entries are never removed.
type dict struct {
	seed maphash.Seed
	t    atomic.Pointer[dictTable]
	n    int
	byID []*entry        // writer only
	df   [][nKinds]int32 // by id: filters holding the value, per clause kind; writer only
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
	d.df = make([][nKinds]int32, 1)
}

func (d *dict) internBytes(b []byte) *entry { return d.intern(string(b)) }

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
	d.df = append(d.df, [nKinds]int32{})
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
