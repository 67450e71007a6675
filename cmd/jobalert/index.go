package main

import (
	"sync/atomic"
	"time"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// liveIndex is the filter index the consumer matches against: the one the
// change feed swapped in last (store.FollowFilters loads a fresh index at
// start and on every reload, and keeps it current in place). Safe for
// concurrent use; a batch matched across a swap gets ids from both, which
// the Recorder allows (consumer.Matched.Keys).
type liveIndex struct {
	p atomic.Pointer[matcher.Index]
	// building is when the index being loaded was made (newIndex); only
	// FollowFilters's goroutine uses it.
	building time.Time
}

// newLiveIndex starts with an empty index, until the first load.
func newLiveIndex() *liveIndex {
	l := &liveIndex{}
	l.p.Store(matcher.NewIndex())
	return l
}

func (l *liveIndex) current() *matcher.Index { return l.p.Load() }

func (l *liveIndex) MatchIDs(j *matcher.Job) []string { return l.current().MatchIDs(j) }

func (l *liveIndex) MatchKeyed(j *matcher.Job) ([]string, []uint32) {
	return l.current().MatchKeyed(j)
}

// Len is the number of filters in the index in use.
func (l *liveIndex) Len() int { return l.current().Len() }

// newIndex and swap are FollowFilters's; swap returns how long the index
// took to load, from its newIndex.
func (l *liveIndex) newIndex() store.FilterIndex {
	l.building = time.Now()
	return matcher.NewIndex()
}

func (l *liveIndex) swap(ix store.FilterIndex) time.Duration {
	l.p.Store(ix.(*matcher.Index))
	return time.Since(l.building)
}
