// Package schedule owns the calendar of digests: when a daily or weekly
// digest is due in the subscriber's time zone, across daylight-saving
// transitions. It is pure: the clock is always an argument.
package schedule

import (
	"fmt"
	"strings"
	"time"
)

// Frequencies a subscription can have.
const (
	Instant = "instant"
	Daily   = "daily"
	Weekly  = "weekly"
)

// Spec is when a subscriber wants their digest.
type Spec struct {
	Frequency string // instant | daily | weekly
	Timezone  string // IANA name; empty is UTC
	SendHour  int    // 0-23, local
	WeeklyDay string // monday..sunday, for weekly
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// Validate returns a message per bad field, keyed by its JSON name; an
// empty map means the spec is usable.
func (s Spec) Validate() map[string]string {
	bad := map[string]string{}
	switch s.Frequency {
	case Instant, Daily, Weekly:
	default:
		bad["frequency"] = "must be one of instant, daily, weekly"
	}
	if _, err := s.Location(); err != nil {
		bad["timezone"] = fmt.Sprintf("unknown time zone %q: use an IANA name such as America/Los_Angeles", s.Timezone)
	}
	if s.SendHour < 0 || s.SendHour > 23 {
		bad["send_hour"] = "must be an hour from 0 to 23"
	}
	if s.Frequency == Weekly {
		if _, ok := weekdays[strings.ToLower(s.WeeklyDay)]; !ok {
			bad["weekly_day"] = "must be a day of the week, monday to sunday"
		}
	}
	return bad
}

// Location loads the spec's time zone.
func (s Spec) Location() (*time.Location, error) {
	if s.Timezone == "" {
		return time.UTC, nil
	}
	if strings.EqualFold(s.Timezone, "local") {
		return nil, fmt.Errorf("unknown time zone %q", s.Timezone)
	}
	return time.LoadLocation(s.Timezone)
}

// First returns when a daily or weekly digest is first due after now: the
// next send hour (on the weekly day) strictly after now. Instant specs have
// no calendar: it returns the zero time.
func (s Spec) First(now time.Time) time.Time {
	return s.next(now, time.Time{})
}

// Next returns when the digest is due after one that was due at due and
// claimed at now: on a later local date than due, and strictly after now,
// so a missed digest is sent once after downtime and a send hour that
// occurs twice (a DST fall-back) sends once.
func (s Spec) Next(due, now time.Time) time.Time {
	return s.next(now, due)
}

func (s Spec) next(now, lastDue time.Time) time.Time {
	if s.Frequency != Daily && s.Frequency != Weekly {
		return time.Time{}
	}
	loc, err := s.Location()
	if err != nil {
		loc = time.UTC
	}
	local := now.In(loc)
	y, m, d := local.Date()
	var after time.Time // candidates must fall on a local date after this one
	if !lastDue.IsZero() {
		ly, lm, ld := lastDue.In(loc).Date()
		after = time.Date(ly, lm, ld, 0, 0, 0, 0, time.UTC)
	}
	for i := 0; i < 400; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, time.UTC) // a calendar date, zone-free
		if !after.IsZero() && !day.After(after) {
			continue
		}
		if s.Frequency == Weekly && day.Weekday() != weekdays[strings.ToLower(s.WeeklyDay)] {
			continue
		}
		t := At(day.Year(), day.Month(), day.Day(), s.SendHour, loc)
		if t.After(now) {
			return t
		}
	}
	return time.Time{} // unreachable for valid specs
}

// At returns hour:00 local time on the given date. When that hour does not
// exist (a DST spring-forward gap) it returns the first instant after the
// gap, the next existing hour; when it exists twice (fall-back) it returns
// the first.
func At(y int, m time.Month, d, hour int, loc *time.Location) time.Time {
	return atClock(y, m, d, hour, 0, loc)
}

// atClock is At for hour:minute.
func atClock(y int, m time.Month, d, hour, minute int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, hour, minute, 0, 0, loc)
	start, end := t.ZoneBounds()
	want := time.Date(y, m, d, hour, minute, 0, 0, time.UTC)
	got := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
	switch {
	case got.Before(want):
		// In a gap, normalised with the offset from before it: the gap
		// ends where t's zone period ends.
		return end.In(loc)
	case got.After(want):
		// Normalised with the offset from after the gap: the gap ends
		// where t's zone period starts.
		return start.In(loc)
	}
	if start.IsZero() {
		return t
	}
	// After a fall-back the same wall time also existed, earlier, under
	// the previous (larger) offset; take that one.
	_, off := t.Zone()
	_, prev := start.Add(-time.Second).Zone()
	if prev > off {
		if e := t.Add(-time.Duration(prev-off) * time.Second); e.Before(start) {
			return e
		}
	}
	return t
}
