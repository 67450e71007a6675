package consumer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
)

// fakeReposts takes every id "r-<x>" for a repost of "<x>"; its first
// call fails, as Redis might.
type fakeReposts struct{ calls atomic.Int32 }

func (f *fakeReposts) ResolveReposts(_ context.Context, evs []jobevent.Event) ([]jobevent.Repost, error) {
	if f.calls.Add(1) == 1 {
		return nil, errors.New("redis down")
	}
	out := make([]jobevent.Repost, len(evs))
	for i, ev := range evs {
		out[i] = jobevent.Repost{Of: ev.Job.ID}
		if len(ev.Job.ID) > 2 && ev.Job.ID[:2] == "r-" {
			out[i] = jobevent.Repost{Of: ev.Job.ID[2:], Reason: jobevent.RepostSameRole}
		}
	}
	return out, nil
}

// A jobs.created resolved to another job is recorded as a jobs.updated of
// it, and the repost's own updates and close go to that job; a failed
// resolution retries the batch.
func TestConsumerRecordsRepostsUnderTheirJob(t *testing.T) {
	js := mustJetStream(t)
	rec := &recorder{}
	c := consumer.New(js, fastConfig(), matchFunc(matchAll), rec, testenv.Logger(t), nil)
	c.UseReposts(&fakeReposts{})
	publish(t, js, consumer.SubjectCreated, jobBody("j1", "Backend Engineer"))
	publish(t, js, consumer.SubjectCreated, jobBody("r-j1", "Backend Engineer"))
	publish(t, js, consumer.SubjectUpdated, jobBody("r-j1", "Backend Engineer II"))
	publish(t, js, consumer.SubjectClosed, `{"id":"r-j1"}`)
	run(t, c)
	testenv.Eventually(t, wait, func() bool { return rec.count() == 4 }, "4 events recorded, got %d", rec.count())
	want := []struct {
		kind jobevent.Kind
		id   string
	}{{jobevent.Created, "j1"}, {jobevent.Updated, "j1"}, {jobevent.Updated, "j1"}, {jobevent.Closed, "j1"}}
	for i, m := range rec.recorded() {
		if m.Event.Kind != want[i].kind || m.Event.Job.ID != want[i].id {
			t.Errorf("event %d: got %s %s want %s %s", i, m.Event.Kind, m.Event.Job.ID, want[i].kind, want[i].id)
		}
	}
}
