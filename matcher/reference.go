package matcher

import (
	"sort"
	"sync"
)

// Reference is the linear-scan matcher: it evaluates every filter against
// every job with Compiled.Matches. It is slow on purpose and stays as the
// oracle the fast index is tested and benchmarked against. It is safe for
// concurrent use.
type Reference struct {
	mu      sync.RWMutex
	filters map[string]*Compiled
}

// NewReference returns an empty Reference matcher.
func NewReference() *Reference {
	return &Reference{filters: make(map[string]*Compiled)}
}

// Add adds the filter under id, replacing any filter already there.
func (r *Reference) Add(id string, f Filter) error {
	c, err := Compile(f)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.filters[id] = c
	r.mu.Unlock()
	return nil
}

// Remove removes the filter under id and reports whether it was there.
func (r *Reference) Remove(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.filters[id]
	delete(r.filters, id)
	return ok
}

// Len returns the number of filters held.
func (r *Reference) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.filters)
}

// MatchIDs returns the ids of the filters that match j, sorted ascending.
func (r *Reference) MatchIDs(j *Job) []string {
	p := Prepare(j)
	r.mu.RLock()
	var ids []string
	for id, c := range r.filters {
		if c.Matches(p) {
			ids = append(ids, id)
		}
	}
	r.mu.RUnlock()
	sort.Strings(ids)
	return ids
}
