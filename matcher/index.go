package matcher

import (
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
)

// Index is the fast matcher: it returns exactly what Compiled.Matches (and so
// Reference) returns, in time that grows with the filters that match a job,
// not with the filters stored.
//
// Structure. Filters whose "hard" clauses (keywords, exclude keywords,
// locations, companies, exclude companies, tags) are identical share a
// group. A group is one block of words: a two-word header (published length;
// kind, clause flags and the offset of the members), its hard clauses as
// interned ids (only the clauses it has), then its members, so that a job
// checks a group's hard clauses once and then runs through its members in
// sequence. Members are sorted by their cheap clauses (integral min salary,
// visa and seniority bit sets) and stored as runs, one header of those
// clauses and then the slots of the run, when that is smaller than three
// words a member; a job checks a run once and appends its slots whole. The
// runs are immutable once published (a removal publishes a copy of the
// block); members added later go to a plain tail of three words each,
// tombstoned in place on removal, and the block is rebuilt (sorted, runs
// again) when it grows or when half of it is dead. Each group is posted under pairs (a, b): a is the keyword token
// the fewest stored filters require, b each value of one clause the job
// must have a value of (its companies, else the rarest component of each
// location, else its tags); either half may be absent, and a group with
// neither goes to a short list every job scans. A posting holds a 64-bit
// summary of the values the group requires and a pointer to its block, so
// most groups a job cannot satisfy are passed over without a cache miss. A
// job visits only the lists of the pairs of its own title tokens and
// company, tags and location components; a group reachable through several
// values is accepted through one only (the first value of its clause that
// the job has). A group whose postings already guarantee its hard clauses
// is marked so, and a job runs through its members without reading them.
//
// Building. Add compiles a filter against the dictionary (tokenising and
// looking strings up without a lock) before it takes the writer mutex.
// AddBatch compiles, counts values, hashes ids and allocates slot records
// on every CPU, then, under the writer mutex, groups the whole batch at
// once (in parallel, split by hash): each new group is posted under the
// values rarest over the whole batch, every new block and posting list is
// sized exactly, and the new blocks are laid out in one arena in the order
// of their posting lists, so that a job reads them in sequence.
//
// Matching. A job's posting lists are gathered first and their headers
// loaded in one pass, candidates (postings whose summary the job
// satisfies) are collected across lists, and their blocks' first words are
// loaded in one pass a batch, so that cache misses overlap.
//
// Concurrency. Match takes no lock and never waits. Blocks and posting
// lists are published through atomic pointers; a member or posting is
// appended beyond the published length and then published by an atomic
// store of the length or list, or the block or list is copied and the copy
// published. A removed member is tombstoned in place by an atomic store.
// Add, AddBatch, Update and Remove serialise among themselves on a writer
// mutex that Match never takes. A filter added, updated or removed while a
// Match runs may be reported by it as before or after the change (an
// updated one possibly twice; MatchIDs removes duplicates); every other
// filter is reported exactly as stored.
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
	groups groupTable
	ids    idTable  // filter id -> slot index
	free   []uint32 // FIFO of freed slots, with their last generation
	freeHd int
	next   uint32 // the next never-used slot index
	tmp    []uint32
}

// ErrNotFound is returned by Update for an id the index does not hold.
var ErrNotFound = errors.New("matcher: filter not found")

// ErrFull is returned by Add when the index holds as many filters as its
// slots can address (16,777,215).
var ErrFull = errors.New("matcher: index full")

// ErrTooLarge is returned for a filter whose clauses hold more than about
// four million values in all.
var ErrTooLarge = errors.New("matcher: filter too large")

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
)

type slotRec struct {
	id   string // immutable
	gen  uint32 // immutable
	gid  uint32 // writer only: the group
	pos  uint32 // writer only: member index in the group
	pend int32  // writer only, during AddBatch: 1 + the index of the entry to add
}

type slotChunk [chunkSize]atomic.Pointer[slotRec]

// NewIndex returns an empty index.
func NewIndex() *Index {
	ix := &Index{}
	ix.dict.init()
	ix.pairs.init()
	ix.groups.init()
	ix.ids.seed = ix.dict.seed
	ix.remote = ix.dict.intern("remote")
	ix.pool.New = func() any { return new(jobScratch) }
	return ix
}

// Len returns the number of filters held.
func (ix *Index) Len() int { return int(ix.n.Load()) }

// Add adds the filter under id, replacing any filter already there. It fails
// as Compile does, on an unknown visa code or seniority, with ErrFull, and
// with ErrTooLarge. To load many filters at once, AddBatch is much faster.
func (ix *Index) Add(id string, f Filter) error {
	return ix.put(id, &f, false)
}

// Update replaces the filter under id. It fails with ErrNotFound when the
// index holds no filter under id, and as Add does; on failure the filter
// held stays.
func (ix *Index) Update(id string, f Filter) error {
	return ix.put(id, &f, true)
}

func (ix *Index) put(id string, f *Filter, mustExist bool) error {
	// Compile without the lock, looking strings up only; a string the
	// dictionary does not hold yet sends the compilation under the lock.
	var c compiler
	var cf cfilter
	err := c.compile(&ix.dict, nil, f, &cf)
	if err != nil && err != errMiss {
		return err
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err == errMiss {
		if err := c.compile(&ix.dict, ix.dict.internBytes, f, &cf); err != nil {
			return err
		}
	}
	return ix.putLocked(id, &cf, mustExist)
}

// Entry is a filter and its id, for AddBatch; as JSON, the filter object
// plus "id" (the form of a benchmark filters file, docs/matching.md §7).
type Entry struct {
	ID string `json:"id"`
	Filter
}

// EntryError is an entry AddBatch left out, and why.
type EntryError struct {
	Index int // in the batch
	ID    string
	Err   error
}

func (e EntryError) Error() string { return fmt.Sprintf("filter %q: %v", e.ID, e.Err) }
func (e EntryError) Unwrap() error { return e.Err }

// AddBatch adds every entry as Add would, in order (a later entry with the
// id of an earlier one, or of a filter held, replaces it), and returns the
// entries it left out with the reason: an invalid filter, ErrFull or
// ErrTooLarge. It compiles on every CPU and groups the batch as a whole, so
// building an index from a million filters this way is several times
// faster than a million Adds. Matching may run throughout; other writers
// wait for the batch.
func (ix *Index) AddBatch(entries []Entry) []EntryError {
	return ix.addBatch(entries, runtime.GOMAXPROCS(0))
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

// slotForLocked returns the slot record of id, creating it when the index
// holds no filter under id (then isNew), and its slot.
func (ix *Index) slotForLocked(id string, mustExist bool) (rec *slotRec, h uint32, isNew bool, err error) {
	return ix.slotForHashedLocked(id, maphash.String(ix.ids.seed, id), nil, mustExist)
}

// slotForHashedLocked is slotForLocked given the hash of id and, if not
// nil, the record to store for a new slot (its id must be id).
func (ix *Index) slotForHashedLocked(id string, hash uint64, fresh *slotRec, mustExist bool) (rec *slotRec, h uint32, isNew bool, err error) {
	pos, exists := ix.ids.findHashed(ix, id, hash)
	if exists {
		idx := ix.ids.slot(pos)
		rec = ix.recAt(idx)
		return rec, idx | rec.gen<<slotBits, false, nil
	}
	if mustExist {
		return nil, 0, false, fmt.Errorf("update %q: %w", id, ErrNotFound)
	}
	h, err = ix.newSlotLocked()
	if err != nil {
		return nil, 0, false, err
	}
	idx := h & slotMask
	rec = fresh
	if rec == nil {
		rec = &slotRec{id: id}
	}
	rec.gen = h >> slotBits
	ix.chunk(idx)[idx&(chunkSize-1)].Store(rec)
	ix.ids.insertHashed(ix, hash, idx)
	ix.n.Add(1)
	return rec, h, true, nil
}

func (ix *Index) putLocked(id string, cf *cfilter, mustExist bool) error {
	if len(cf.prog) > maxProg {
		return ErrTooLarge
	}
	rec, h, isNew, err := ix.slotForLocked(id, mustExist)
	if err != nil {
		return err
	}
	if !isNew {
		ix.dropMemberLocked(rec)
	}
	ix.countLocked(cf.flags, cf.prog, 1)
	gid := ix.groupLocked(cf)
	ix.appendMemberLocked(gid, rec, [memberWords]uint32{h, cf.minSal, cf.cond})
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

// MatchKeyed returns the ids of the filters that match j without
// duplicates, and with each id its key: its slot index, a small integer
// (below the index's capacity) that no other filter held at the same
// moment has. A caller grouping the matches of many jobs can index
// an array by key instead of hashing ids; it must still compare the ids,
// since a slot removed and reused between two calls keys another filter.
func (ix *Index) MatchKeyed(j *Job) (ids []string, keys []uint32) {
	return ix.KeyedIDs(ix.Match(j, nil))
}

// KeyedIDs is the second half of MatchKeyed: the ids and keys of the slots
// Match returned. It sorts slots in place and returns keys in its memory.
func (ix *Index) KeyedIDs(slots []uint32) (ids []string, keys []uint32) {
	slices.Sort(slots) // by generation, then index: duplicates side by side
	slots = slices.Compact(slots)
	p := ix.slots.Load()
	if p == nil {
		return nil, nil
	}
	chunks := *p
	ids = make([]string, 0, len(slots))
	keys = slots[:0]
	for _, h := range slots {
		idx := h & slotMask
		if int(idx>>chunkBits) >= len(chunks) {
			continue
		}
		// As IDs: a slot whose filter was removed since resolves to nothing.
		if rec := chunks[idx>>chunkBits][idx&(chunkSize-1)].Load(); rec != nil && rec.gen == h>>slotBits {
			ids = append(ids, rec.id)
			keys = append(keys, idx)
		}
	}
	return ids, keys
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
	return t.findHashed(ix, id, maphash.String(t.seed, id))
}

func (t *idTable) findHashed(ix *Index, id string, h uint64) (int, bool) {
	if len(t.t) == 0 {
		return 0, false
	}
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

// tableSize is the size of an open-addressing table (idTable, groupTable)
// rebuilt for n entries with more to come: a power of two, at least 1024,
// at most three quarters full, and at least twice n+1.
func tableSize(n, more int) int {
	size := 1024
	for size*3 < (n+more)*4 || size < (n+1)*2 {
		size *= 2
	}
	return size
}

// reserve grows the table, if needed, to hold n more ids.
func (t *idTable) reserve(ix *Index, more int) {
	if (t.n+t.tombs+more)*4 <= len(t.t)*3 {
		return
	}
	size := tableSize(t.n, more)
	// Rehash in slot order: the records are read in sequence.
	t.t, t.tombs = make([]uint32, size), 0
	if p := ix.slots.Load(); p != nil {
		for c, ch := range *p {
			for i := range ch {
				if rec := ch[i].Load(); rec != nil {
					t.place(maphash.String(t.seed, rec.id), uint32(c)<<chunkBits|uint32(i))
				}
			}
		}
	}
}

// insertHashed adds an id, which must be absent, of hash h at slot index
// idx, whose record is already stored.
func (t *idTable) insertHashed(ix *Index, h uint64, idx uint32) {
	if (t.n+t.tombs+1)*4 > len(t.t)*3 {
		t.reserve(ix, 1) // places idx too: its record is stored
		t.n++
		return
	}
	t.place(h, idx)
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
