package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

// ScanRecentJobs returns the open job records first seen since the given
// time, with their newest data.
func TestScanRecentJobs(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t, time.Minute)
	old := time.Now().Add(-40 * 24 * time.Hour)
	record(t, s, old, ev(jobevent.Created, "old"))
	record(t, s, time.Now(), ev(jobevent.Created, "a"), ev(jobevent.Created, "b"), ev(jobevent.Created, "c"))
	upd := ev(jobevent.Updated, "a")
	upd.Event.Job.Title = "Backend Engineer (updated)"
	record(t, s, time.Now(), upd, ev(jobevent.Closed, "b"))

	got := map[string]string{}
	err := s.ScanRecentJobs(ctx, time.Now().Add(-30*24*time.Hour), func(j *matcher.Job, first time.Time) error {
		if first.IsZero() {
			t.Errorf("job %s: no first-seen time", j.ID)
		}
		got[j.ID] = j.Title
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id := range got {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"a", "c"}) || got["a"] != "Backend Engineer (updated)" {
		t.Errorf("scan: got %v want a (updated) and c", got)
	}
}
