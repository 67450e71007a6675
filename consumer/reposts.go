package consumer

import (
	"context"
	"fmt"

	"github.com/jobalert/jobalert/jobevent"
)

// Reposts tells which job each event of a batch is about before it is
// recorded (docs/events.md, "Reposts"): store.Redis.ResolveReposts. It
// answers one Repost per event, in order, as if the events were resolved
// one after the other, and must be idempotent: a redelivered event gets
// the answer its first delivery got.
type Reposts interface {
	ResolveReposts(ctx context.Context, evs []jobevent.Event) ([]jobevent.Repost, error)
}

// UseReposts makes the consumer collapse reposts with r: a jobs.created
// that r resolves to another job is recorded as a jobs.updated of that job
// (so it reaches only subscriptions it newly matches), and jobs.updated and
// jobs.closed events of a repost's own id are recorded under the job it
// was taken for. Without it every id is its own job. Call it before Run.
func (c *Consumer) UseReposts(r Reposts) { c.reposts = r }

// resolveReposts rewrites the events of items, in order, to the job they
// are about. An error is transient: the batch is retried whole.
func (c *Consumer) resolveReposts(ctx context.Context, items []*item) error {
	if c.reposts == nil {
		return nil
	}
	evs := make([]jobevent.Event, len(items))
	for i, it := range items {
		evs[i] = it.ev
	}
	rps, err := c.reposts.ResolveReposts(ctx, evs)
	if err != nil {
		return fmt.Errorf("resolve reposts: %w", err)
	}
	if len(rps) != len(items) {
		return fmt.Errorf("resolve reposts: %d answers for %d events", len(rps), len(items))
	}
	for i, it := range items {
		rp := rps[i]
		if it.ev.Kind == jobevent.Created {
			it.repost = repostDecision(rp.Reason)
		}
		applyRepost(&it.ev, rp)
	}
	return nil
}

// applyRepost records ev under rp.Of: a jobs.created of another job's
// repost becomes a jobs.updated of that job.
func applyRepost(ev *jobevent.Event, rp jobevent.Repost) {
	if rp.Of == "" || rp.Of == ev.Job.ID {
		return
	}
	ev.Job.ID = rp.Of
	if ev.Kind == jobevent.Created {
		ev.Kind = jobevent.Updated
	}
}

// repostDecisions are the values of the decision label of
// jobalert_consumer_repost_decisions_total.
var repostDecisions = []string{"new", string(jobevent.RepostCanonicalID), string(jobevent.RepostApplyURL), string(jobevent.RepostSameRole)}

func repostDecision(r jobevent.RepostReason) string {
	if r == jobevent.RepostNone {
		return "new"
	}
	return string(r)
}
