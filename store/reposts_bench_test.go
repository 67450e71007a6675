package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// BenchmarkResolveReposts times the repost resolution of a consumer batch
// of 256 jobs.created (a quarter of them reposts), pipelined (the
// consumer's path) and one event after the other (the baseline).
func BenchmarkResolveReposts(b *testing.B) {
	rdb, prefix := testenv.Redis(b)
	s := store.New(rdb, store.Config{Prefix: prefix, RepostWindow: time.Hour})
	ctx := context.Background()
	n := 0
	batch := func() []jobevent.Event {
		evs := make([]jobevent.Event, 256)
		for i := range evs {
			n++
			role := n
			if i%4 == 3 {
				role = n - 2 // a repost of a posting of this batch
			}
			evs[i] = jobevent.Event{Kind: jobevent.Created, Job: matcher.Job{ID: fmt.Sprintf("j%d", n),
				Title: fmt.Sprintf("Engineer %d", role), Company: "Acme", Locations: []string{"Seattle, WA"},
				URL: fmt.Sprintf("https://board.example/%d", n)}}
		}
		return evs
	}
	b.Run("pipelined", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			evs := batch()
			b.StartTimer()
			if _, err := s.ResolveRepostsAt(ctx, evs, time.Hour, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-by-one", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			evs := batch()
			b.StartTimer()
			for _, ev := range evs {
				if _, err := s.ResolveRepostAt(ctx, ev, time.Hour, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
