package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// QuietHours is a daily span of the subscriber's local time in which
// instant alerts are held, e.g. {"start":"22:00","end":"07:00"}; held
// alerts go out together when it ends. Start is inside the span, End is
// not; a span whose End is earlier than its Start runs over midnight.
type QuietHours struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// ErrQuietHours is wrapped by QuietHours.Validate's errors.
var ErrQuietHours = errors.New("invalid quiet_hours")

// parseClock reads "HH:MM" (24-hour, "7:00" accepted) as minutes after
// midnight.
func parseClock(field, s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || len(h) < 1 || len(h) > 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("%w: %s %q is not a time of day HH:MM from 00:00 to 23:59", ErrQuietHours, field, s)
	}
	return hh*60 + mm, nil
}

func (q QuietHours) minutes() (start, end int, err error) {
	if start, err = parseClock("start", q.Start); err != nil {
		return 0, 0, err
	}
	if end, err = parseClock("end", q.End); err != nil {
		return 0, 0, err
	}
	if start == end {
		return 0, 0, fmt.Errorf("%w: start and end are both %s: quiet hours need a span (to pause alerts, pause the subscription)", ErrQuietHours, q.Start)
	}
	return start, end, nil
}

// Validate returns an error naming what is wrong: a start or end that is
// not HH:MM, or a start equal to the end.
func (q QuietHours) Validate() error {
	_, _, err := q.minutes()
	return err
}

// Until reports whether an alert at t falls inside the quiet hours in
// loc and, if so, when they end: the first instant after t at which the
// local clock shows End, or, when a daylight-saving change skips End,
// the first instant after the skipped hour. Alerts held at t are sent,
// coalesced, at that time. Invalid quiet hours are never quiet.
func (q QuietHours) Until(t time.Time, loc *time.Location) (end time.Time, quiet bool) {
	s, e, err := q.minutes()
	if err != nil {
		return time.Time{}, false
	}
	local := t.In(loc)
	m := local.Hour()*60 + local.Minute()
	switch {
	case s < e && m >= s && m < e:
	case s > e && (m >= s || m < e):
	default:
		return time.Time{}, false
	}
	y, mo, d := local.Date()
	if s > e && m >= s {
		d++ // ends tomorrow
	}
	first := atClock(y, mo, d, e/60, e%60, loc)
	if first.After(t) {
		return first, true
	}
	// t is in the second pass of a repeated hour (a fall-back), after the
	// first time the clock showed End: the clock shows it again later.
	for step := 15 * time.Minute; step <= 2*time.Hour; step += 15 * time.Minute {
		c := first.Add(step).In(loc)
		if c.After(t) && c.Hour()*60+c.Minute() == e {
			return c, true
		}
	}
	return first.Add(time.Hour), true // unreachable with real zones
}

// MaxAlertsPerDay bounds a subscription's instant alerts per local day.
const MaxAlertsPerDay = 1000

// ValidateDailyCap checks max_alerts_per_day: 0 is unlimited, else 1 to
// MaxAlertsPerDay.
func ValidateDailyCap(max int) error {
	if max < 0 || max > MaxAlertsPerDay {
		return fmt.Errorf("invalid max_alerts_per_day: %d is not from 1 to %d (0 or absent: unlimited)", max, MaxAlertsPerDay)
	}
	return nil
}

// Day returns the local day t falls on in loc: its date as "2006-01-02"
// (the key alerts are counted under) and the instants it starts and ends
// (a day is 23, 24 or 25 hours long across daylight-saving changes; the
// count's key can expire at end).
func Day(t time.Time, loc *time.Location) (key string, start, end time.Time) {
	y, m, d := t.In(loc).Date()
	start = midnight(y, m, d, loc)
	end = midnight(y, m, d+1, loc)
	return start.In(loc).Format("2006-01-02"), start, end
}

// midnight is the first instant of a local date (which is not 00:00
// where a change skips midnight).
func midnight(y int, m time.Month, d int, loc *time.Location) time.Time {
	return atClock(y, m, d, 0, 0, loc)
}

// CapAllows reports whether an instant alert may go out when sent alerts
// went out already on its local day under a max_alerts_per_day of max
// (0: unlimited).
func CapAllows(max, sent int) bool { return max == 0 || sent < max }

// RollupAt returns when the one "and N more" message for matches held
// back by the daily cap at t goes out: the first sendHour (local, as
// At places it across daylight-saving changes) strictly after t. Every
// match held back until then goes into that one message.
func RollupAt(t time.Time, sendHour int, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	for i := 0; i < 3; i++ {
		if c := At(y, m, d+i, sendHour, loc); c.After(t) {
			return c
		}
	}
	return time.Time{} // unreachable for an hour 0-23
}
