package notifier

import (
	"context"
	"time"

	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
)

// gated is what quiet hours and the daily cap make of one due entry.
type gated struct {
	held bool // postponed: not claimed now
	// kind, countDay and countUntil go into the claim (store.Claim).
	kind       string
	countDay   string
	countUntil time.Time
}

// gate applies quiet hours and the daily cap (docs/channels.md) to the
// instant subscriptions of a batch of due entries, from the subscriptions
// RunDue has read; daily and weekly digests pass as they are.
//
//   - A rollup whose time has come (the subscription's RollupAt mark) is
//     claimed as a KindRollup digest at its time, quiet hours or not: it
//     is the one message the subscriber was promised at the send hour, and
//     it does not count towards the new day's cap.
//   - Inside quiet hours the entry moves to their end (or to a pending
//     rollup's time when that comes first): whatever matches meanwhile
//     joins the pending list, and goes out as one alert then.
//   - With a daily cap, the day's count is read for the whole batch in
//     one round trip; an alert the cap allows is claimed and counted on
//     the subscriber's local day, one it does not moves to the rollup
//     time, marked as the rollup.
//
// A Postpone that finds the entry changed (another replica claimed or
// moved it) does nothing: either way this replica does not claim it.
func (d *Digester) gate(ctx context.Context, due []store.Due, subs []*store.Subscription, now time.Time) ([]gated, error) {
	out := make([]gated, len(due))
	var (
		capped     []int
		ids, days  []string
		locs       = make([]*time.Location, len(due))
		dayEnds    = make([]time.Time, len(due))
		postponeAt = func(i int, at, rollup time.Time) error {
			out[i].held = true
			_, err := d.store.Postpone(ctx, due[i], at, rollup)
			return err
		}
	)
	for i := range due {
		sub := subs[i]
		if sub == nil || sub.Frequency != schedule.Instant {
			continue
		}
		loc, err := sub.Schedule().Location()
		if err != nil {
			loc = time.UTC // validated on write; a zone the binary lost is read as UTC
		}
		locs[i] = loc
		if !sub.RollupAt.IsZero() && !now.Before(sub.RollupAt) {
			out[i].kind = store.KindRollup
			continue
		}
		if sub.QuietHours != nil {
			if end, quiet := sub.QuietHours.Until(now, loc); quiet {
				at := end
				if !sub.RollupAt.IsZero() && sub.RollupAt.Before(at) {
					at = sub.RollupAt // the rollup goes at its time
				}
				if err := postponeAt(i, at, time.Time{}); err != nil {
					return nil, err
				}
				continue
			}
		}
		if sub.MaxAlertsPerDay > 0 {
			key, _, end := schedule.Day(now, loc)
			capped = append(capped, i)
			ids = append(ids, sub.ID)
			days = append(days, key)
			dayEnds[i] = end
		}
	}
	if len(capped) == 0 {
		return out, nil
	}
	sent, err := d.store.AlertsSent(ctx, ids, days)
	if err != nil {
		return nil, err
	}
	for j, i := range capped {
		sub := subs[i]
		if !schedule.CapAllows(sub.MaxAlertsPerDay, sent[j]) {
			at := sub.RollupAt
			if at.IsZero() {
				at = schedule.RollupAt(now, sub.SendHour, locs[i])
			}
			if err := postponeAt(i, at, at); err != nil {
				return nil, err
			}
			continue
		}
		// The count outlives its day by an hour, so that a claim at the
		// day's last instant still finds it.
		out[i].countDay, out[i].countUntil = days[j], dayEnds[i].Add(time.Hour)
	}
	return out, nil
}
