package schedule_test

import (
	"maps"
	"testing"
	"time"

	"github.com/jobalert/jobalert/schedule"
)

func mustLoc(tb testing.TB, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatalf("load %s: %v", name, err)
	}
	return loc
}

var (
	la     = loadLoc("America/Los_Angeles")
	ny     = loadLoc("America/New_York")
	berlin = loadLoc("Europe/Berlin")
)

// loadLoc is for package-level zones; tests use mustLoc.
func loadLoc(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic("time zone data missing: " + err.Error())
	}
	return loc
}

func daily(tz string, hour int) schedule.Spec {
	return schedule.Spec{Frequency: schedule.Daily, Timezone: tz, SendHour: hour}
}

func weekly(tz string, hour int, day string) schedule.Spec {
	return schedule.Spec{Frequency: schedule.Weekly, Timezone: tz, SendHour: hour, WeeklyDay: day}
}

func TestAt(t *testing.T) {
	for _, tc := range []struct {
		name       string
		tz         string
		y          int
		m          time.Month
		d, hour    int
		want       time.Time
		wantOffset int // hours east of UTC of the result
	}{
		{"plain day", "America/Los_Angeles", 2026, 12, 1, 8, time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC), -8},
		{"NY spring-forward gap 02:00 -> 03:00", "America/New_York", 2026, 3, 8, 2, time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC), -4},
		{"NY hour before the gap", "America/New_York", 2026, 3, 8, 1, time.Date(2026, 3, 8, 6, 0, 0, 0, time.UTC), -5},
		{"NY hour after the gap", "America/New_York", 2026, 3, 8, 3, time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC), -4},
		{"NY fall-back 01:00 twice -> the first", "America/New_York", 2026, 11, 1, 1, time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC), -4},
		{"NY hour after the fall-back", "America/New_York", 2026, 11, 1, 2, time.Date(2026, 11, 1, 7, 0, 0, 0, time.UTC), -5},
		// East of UTC Go normalises a gap time forward: this used to give
		// 04:00 and 03:00.
		{"Berlin spring-forward gap 02:00 -> 03:00", "Europe/Berlin", 2026, 3, 29, 2, time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), 2},
		{"London spring-forward gap 01:00 -> 02:00", "Europe/London", 2026, 3, 29, 1, time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), 1},
		{"Berlin fall-back 02:00 twice -> the first", "Europe/Berlin", 2026, 10, 25, 2, time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), 2},
		{"Santiago midnight gap 00:00 -> 01:00", "America/Santiago", 2026, 9, 6, 0, time.Date(2026, 9, 6, 4, 0, 0, 0, time.UTC), -3},
		{"Havana midnight twice -> the first", "America/Havana", 2026, 11, 1, 0, time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC), -4},
		{"Lord Howe half-hour gap 02:00 -> 02:30", "Australia/Lord_Howe", 2026, 10, 4, 2, time.Date(2026, 10, 3, 15, 30, 0, 0, time.UTC), 11},
		{"UTC", "UTC", 2026, 6, 1, 23, time.Date(2026, 6, 1, 23, 0, 0, 0, time.UTC), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := schedule.At(tc.y, tc.m, tc.d, tc.hour, mustLoc(t, tc.tz))
			if !got.Equal(tc.want) {
				t.Errorf("At(%d-%02d-%02d %02d:00 %s): got %v (%v), want %v",
					tc.y, tc.m, tc.d, tc.hour, tc.tz, got, got.UTC(), tc.want)
			}
			if _, off := got.Zone(); off != tc.wantOffset*3600 {
				t.Errorf("offset: got %ds, want %dh", off, tc.wantOffset)
			}
		})
	}
}

func TestFirst(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec schedule.Spec
		now  time.Time
		want time.Time
	}{
		{"daily: before the hour is today", daily("America/Los_Angeles", 8),
			time.Date(2026, 12, 1, 7, 59, 0, 0, la), time.Date(2026, 12, 1, 8, 0, 0, 0, la)},
		{"daily: at the hour is tomorrow", daily("America/Los_Angeles", 8),
			time.Date(2026, 12, 1, 8, 0, 0, 0, la), time.Date(2026, 12, 2, 8, 0, 0, 0, la)},
		{"daily: after the hour is tomorrow", daily("America/Los_Angeles", 8),
			time.Date(2026, 12, 1, 8, 1, 0, 0, la), time.Date(2026, 12, 2, 8, 0, 0, 0, la)},
		{"daily: local date, not the UTC one", daily("America/Los_Angeles", 8),
			time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC), // Dec 1 17:00 in LA
			time.Date(2026, 12, 2, 8, 0, 0, 0, la)},
		{"daily: empty time zone is UTC", daily("", 8),
			time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)},
		{"weekly: the next monday", weekly("America/Los_Angeles", 8, "monday"),
			time.Date(2026, 11, 27, 9, 0, 0, 0, la), // a Friday
			time.Date(2026, 11, 30, 8, 0, 0, 0, la)},
		{"weekly: the day itself before the hour", weekly("America/Los_Angeles", 8, "Friday"),
			time.Date(2026, 11, 27, 7, 0, 0, 0, la), time.Date(2026, 11, 27, 8, 0, 0, 0, la)},
		{"weekly: the day itself after the hour is next week", weekly("America/Los_Angeles", 8, "friday"),
			time.Date(2026, 11, 27, 8, 30, 0, 0, la), time.Date(2026, 12, 4, 8, 0, 0, 0, la)},
		{"NY spring-forward: 02:00 does not exist, 03:00 EDT", daily("America/New_York", 2),
			time.Date(2026, 3, 7, 12, 0, 0, 0, ny), time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)},
		{"NY fall-back: the first 01:00 (EDT)", daily("America/New_York", 1),
			time.Date(2026, 10, 31, 12, 0, 0, 0, ny), time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)},
		{"NY fall-back: between the two 01:00s is tomorrow", daily("America/New_York", 1),
			time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC)},
		{"Berlin spring-forward: 03:00 CEST", daily("Europe/Berlin", 2),
			time.Date(2026, 3, 28, 12, 0, 0, 0, berlin), time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)},
		{"instant has no calendar", schedule.Spec{Frequency: schedule.Instant},
			time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.spec.First(tc.now); !got.Equal(tc.want) {
				t.Errorf("First(%v): got %v, want %v", tc.now, got, tc.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spec     schedule.Spec
		due, now time.Time
		want     time.Time
	}{
		{"daily: claimed on time", daily("America/Los_Angeles", 8),
			time.Date(2026, 12, 1, 8, 0, 0, 0, la), time.Date(2026, 12, 1, 8, 0, 0, 0, la),
			time.Date(2026, 12, 2, 8, 0, 0, 0, la)},
		{"daily: claimed late the same day", daily("America/Los_Angeles", 8),
			time.Date(2026, 12, 1, 8, 0, 0, 0, la), time.Date(2026, 12, 1, 23, 30, 0, 0, la),
			time.Date(2026, 12, 2, 8, 0, 0, 0, la)},
		{"daily: 3 days down, claimed after the hour: one time, tomorrow", daily("America/Los_Angeles", 8),
			time.Date(2026, 12, 1, 8, 0, 0, 0, la), time.Date(2026, 12, 4, 10, 0, 0, 0, la),
			time.Date(2026, 12, 5, 8, 0, 0, 0, la)},
		{"daily: 3 days down, claimed before the hour: later today", daily("America/Los_Angeles", 8),
			time.Date(2026, 12, 1, 8, 0, 0, 0, la), time.Date(2026, 12, 4, 7, 0, 0, 0, la),
			time.Date(2026, 12, 4, 8, 0, 0, 0, la)},
		{"weekly: a week later", weekly("America/Los_Angeles", 8, "monday"),
			time.Date(2026, 11, 30, 8, 0, 0, 0, la), time.Date(2026, 11, 30, 8, 0, 0, 0, la),
			time.Date(2026, 12, 7, 8, 0, 0, 0, la)},
		{"weekly: 3 weeks down", weekly("America/Los_Angeles", 8, "monday"),
			time.Date(2026, 11, 2, 8, 0, 0, 0, la), time.Date(2026, 11, 25, 8, 0, 0, 0, la),
			time.Date(2026, 11, 30, 8, 0, 0, 0, la)},
		{"NY spring-forward: after 03:00 EDT, 02:00 EDT next day", daily("America/New_York", 2),
			time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC), time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC),
			time.Date(2026, 3, 9, 6, 0, 0, 0, time.UTC)},
		{"NY fall-back: claimed at the first 01:00", daily("America/New_York", 1),
			time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC)},
		{"NY fall-back: claimed at the second 01:00, still once", daily("America/New_York", 1),
			time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC),
			time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC)},
		{"hour changed to a later one: not twice on the due's date", daily("America/Los_Angeles", 10),
			time.Date(2026, 12, 1, 8, 0, 0, 0, la), time.Date(2026, 12, 1, 8, 0, 0, 0, la),
			time.Date(2026, 12, 2, 10, 0, 0, 0, la)},
		{"time zone changed LA -> NY: the next NY 08:00", daily("America/New_York", 8),
			time.Date(2026, 12, 1, 8, 0, 0, 0, la), time.Date(2026, 12, 1, 8, 0, 0, 0, la),
			time.Date(2026, 12, 2, 8, 0, 0, 0, ny)},
		{"time zone changed LA -> Tokyo: due's Tokyo date is skipped", daily("Asia/Tokyo", 8),
			time.Date(2026, 12, 1, 8, 0, 0, 0, la), // Dec 2 01:00 in Tokyo
			time.Date(2026, 12, 1, 8, 0, 0, 0, la),
			time.Date(2026, 12, 3, 8, 0, 0, 0, loadLoc("Asia/Tokyo"))},
		{"instant: nothing", schedule.Spec{Frequency: schedule.Instant},
			time.Date(2026, 12, 1, 8, 0, 0, 0, la), time.Date(2026, 12, 1, 8, 0, 0, 0, la), time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.spec.Next(tc.due, tc.now)
			if !got.Equal(tc.want) {
				t.Errorf("Next(%v, %v): got %v, want %v", tc.due, tc.now, got, tc.want)
			}
			if !got.IsZero() && !got.After(tc.now) {
				t.Errorf("Next(%v, %v) = %v is not after now", tc.due, tc.now, got)
			}
		})
	}
}

// TestChangesTakeEffect: a changed time zone or hour schedules from First
// with the new spec (the store does this when a subscription is saved).
func TestChangesTakeEffect(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, la) // 12:00 in New York
	for _, tc := range []struct {
		name string
		spec schedule.Spec
		want time.Time
	}{
		{"hour 8 -> 10, later today", daily("America/Los_Angeles", 10), time.Date(2026, 12, 1, 10, 0, 0, 0, la)},
		{"hour 8 -> 7, tomorrow", daily("America/Los_Angeles", 7), time.Date(2026, 12, 2, 7, 0, 0, 0, la)},
		{"LA -> New York 08:00, already past there", daily("America/New_York", 8), time.Date(2026, 12, 2, 8, 0, 0, 0, ny)},
		{"LA -> New York 18:00, later today there", daily("America/New_York", 18), time.Date(2026, 12, 1, 18, 0, 0, 0, ny)},
		{"daily -> weekly tuesday (today), later today", weekly("America/Los_Angeles", 10, "tuesday"), time.Date(2026, 12, 1, 10, 0, 0, 0, la)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.spec.First(now); !got.Equal(tc.want) {
				t.Errorf("First: got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDailyAllYear walks a year of Next in several zones: one send per
// local date, always at the send hour or (in a gap) the first instant
// after it, strictly increasing.
func TestDailyAllYear(t *testing.T) {
	for _, tz := range []string{"America/Los_Angeles", "America/New_York", "Europe/Berlin", "Europe/London",
		"America/Santiago", "America/Havana", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"} {
		for _, hour := range []int{0, 1, 2, 3, 8, 23} {
			spec := daily(tz, hour)
			loc := mustLoc(t, tz)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Add(-time.Minute)
			due := spec.First(now)
			days := map[string]bool{}
			for range 365 {
				local := due.In(loc)
				key := local.Format("2006-01-02")
				if days[key] {
					t.Fatalf("%s %02d:00: two sends on %s", tz, hour, key)
				}
				days[key] = true
				want := time.Date(local.Year(), local.Month(), local.Day(), hour, 0, 0, 0, time.UTC)
				got := time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), 0, 0, time.UTC)
				if got.Before(want) || got.Sub(want) > time.Hour {
					t.Fatalf("%s %02d:00: sent at %v local", tz, hour, local)
				}
				if got != want {
					// Only in a gap: the instant a minute before is
					// before the requested wall time by more than a minute.
					before := due.Add(-time.Minute).In(loc)
					if before.Hour() == hour {
						t.Fatalf("%s %02d:00: sent at %v though %v existed", tz, hour, local, before)
					}
				}
				next := spec.Next(due, due)
				if !next.After(due) {
					t.Fatalf("%s: Next(%v) = %v, not after", tz, due, next)
				}
				due = next
			}
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec schedule.Spec
		want map[string]string
	}{
		{"daily ok", daily("America/Los_Angeles", 8), map[string]string{}},
		{"weekly ok, any case", weekly("Europe/Berlin", 0, "Monday"), map[string]string{}},
		{"instant ok, empty zone", schedule.Spec{Frequency: schedule.Instant}, map[string]string{}},
		{"bad frequency", schedule.Spec{Frequency: "hourly", Timezone: "UTC", SendHour: 8},
			map[string]string{"frequency": "must be one of instant, daily, weekly"}},
		{"empty frequency", schedule.Spec{Timezone: "UTC"},
			map[string]string{"frequency": "must be one of instant, daily, weekly"}},
		{"unknown zone", daily("Mars/Olympus_Mons", 8),
			map[string]string{"timezone": `unknown time zone "Mars/Olympus_Mons": use an IANA name such as America/Los_Angeles`}},
		{"Local is not a zone", daily("Local", 8),
			map[string]string{"timezone": `unknown time zone "Local": use an IANA name such as America/Los_Angeles`}},
		{"path is not a zone", daily("../../etc/passwd", 8),
			map[string]string{"timezone": `unknown time zone "../../etc/passwd": use an IANA name such as America/Los_Angeles`}},
		{"hour 24", daily("UTC", 24), map[string]string{"send_hour": "must be an hour from 0 to 23"}},
		{"hour -1", daily("UTC", -1), map[string]string{"send_hour": "must be an hour from 0 to 23"}},
		{"weekly without a day", weekly("UTC", 8, ""), map[string]string{"weekly_day": "must be a day of the week, monday to sunday"}},
		{"weekly with a bad day", weekly("UTC", 8, "funday"), map[string]string{"weekly_day": "must be a day of the week, monday to sunday"}},
		{"every field bad", schedule.Spec{Frequency: "weekly", Timezone: "Nowhere/City", SendHour: 99, WeeklyDay: "mon"},
			map[string]string{
				"timezone":   `unknown time zone "Nowhere/City": use an IANA name such as America/Los_Angeles`,
				"send_hour":  "must be an hour from 0 to 23",
				"weekly_day": "must be a day of the week, monday to sunday",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.spec.Validate()
			if !maps.Equal(got, tc.want) {
				t.Errorf("Validate(%+v):\ngot  %v\nwant %v", tc.spec, got, tc.want)
			}
			if len(got) > 0 {
				return
			}
			// A valid daily or weekly spec always has a next time.
			if tc.spec.Frequency != schedule.Instant {
				if first := tc.spec.First(time.Now()); first.IsZero() {
					t.Errorf("valid spec %+v has no first time", tc.spec)
				}
			}
		})
	}
}
