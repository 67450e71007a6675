package store

import (
	"context"
	"strconv"
	"time"
)

// Unsubscribe feedback (docs/redis.md): after a one-click unsubscribe the
// page asks one optional question; the answers are counted for `jobalert
// admin stats`. Each subscription's answer counts once, whatever how many
// times the page is sent: every key is touched by single-key commands, so
// each may live in its own Redis Cluster slot.
//
//	feedback:unsub                 HASH   reason -> count, and "switched_weekly"
//	feedback:unsub:<sub id>:reason STRING the reason counted; TTL UnsubscribeFeedbackTTL
//	feedback:unsub:<sub id>:weekly STRING a switch to weekly counted; same TTL

// UnsubscribeReasons are the answers the unsubscribe page offers.
var UnsubscribeReasons = []string{"too_many", "not_relevant", "found_job", "other"}

// SwitchedWeekly is the count, among the unsubscribe reasons, of
// subscriptions that took "weekly instead" after unsubscribing.
const SwitchedWeekly = "switched_weekly"

// UnsubscribeFeedbackTTL is how long a subscription's answer is kept, so
// that sending the form again does not count it again.
const UnsubscribeFeedbackTTL = 90 * 24 * time.Hour

func (k keys) feedbackCounts() string       { return k.p + "feedback:unsub" }
func (k keys) feedbackSub(id string) string { return k.p + "feedback:unsub:" + id }

// RecordUnsubscribeReason counts reason (one of UnsubscribeReasons, or
// SwitchedWeekly) for a subscription once: it reports false when that
// subscription's answer of that kind was counted already.
func (s *Redis) RecordUnsubscribeReason(ctx context.Context, subID, reason string) (bool, error) {
	field := "reason"
	if reason == SwitchedWeekly {
		field = "weekly"
	}
	ok, err := s.rdb.SetNX(ctx, s.k.feedbackSub(subID)+":"+field, reason, UnsubscribeFeedbackTTL).Result()
	if err != nil {
		return false, wrap("unsubscribe reason", err)
	}
	if !ok {
		return false, nil
	}
	if err := s.rdb.HIncrBy(ctx, s.k.feedbackCounts(), reason, 1).Err(); err != nil {
		return false, wrap("unsubscribe reason", err)
	}
	return true, nil
}

// UnsubscribeFeedback returns the counts of every unsubscribe answer (zero
// for those never given) and of SwitchedWeekly.
func (s *Redis) UnsubscribeFeedback(ctx context.Context) (map[string]int64, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.feedbackCounts()).Result()
	if err != nil {
		return nil, wrap("unsubscribe feedback", err)
	}
	out := map[string]int64{SwitchedWeekly: 0}
	for _, r := range UnsubscribeReasons {
		out[r] = 0
	}
	for k, v := range h {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}
