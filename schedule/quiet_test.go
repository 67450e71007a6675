package schedule_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/schedule"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestQuietHoursUntil checks, across both daylight-saving changes of
// 2026 in New York (Mar 8 02:00 EST → 03:00 EDT; Nov 1 02:00 EDT → 01:00
// EST) and London (Mar 29 01:00 GMT → 02:00 BST; Oct 25 02:00 BST →
// 01:00 GMT), whether an alert at t is held and until when.
func TestQuietHoursUntil(t *testing.T) {
	ny, ldn := mustLoc(t, "America/New_York"), mustLoc(t, "Europe/London")
	cases := []struct {
		name  string
		q     schedule.QuietHours
		loc   *time.Location
		at    string
		quiet bool
		end   string
	}{
		{"evening inside, ends next morning", schedule.QuietHours{Start: "22:00", End: "07:00"}, ny, "2026-06-10T03:00:00Z", true, "2026-06-10T11:00:00Z"},
		{"at start is inside", schedule.QuietHours{Start: "22:00", End: "07:00"}, ny, "2026-06-10T02:00:00Z", true, "2026-06-10T11:00:00Z"},
		{"at end is outside", schedule.QuietHours{Start: "22:00", End: "07:00"}, ny, "2026-06-10T11:00:00Z", false, ""},
		{"afternoon outside", schedule.QuietHours{Start: "22:00", End: "07:00"}, ny, "2026-06-10T18:00:00Z", false, ""},
		{"same-day span", schedule.QuietHours{Start: "13:00", End: "14:30"}, ny, "2026-06-10T17:10:00Z", true, "2026-06-10T18:30:00Z"},
		// New York, spring forward: the night is an hour shorter.
		{"NY spring: night across the gap", schedule.QuietHours{Start: "22:00", End: "07:00"}, ny, "2026-03-08T06:30:00Z", true, "2026-03-08T11:00:00Z"},
		{"NY spring: start in the skipped hour, after the gap", schedule.QuietHours{Start: "02:30", End: "06:00"}, ny, "2026-03-08T07:10:00Z", true, "2026-03-08T10:00:00Z"},
		{"NY spring: start in the skipped hour, before the gap", schedule.QuietHours{Start: "02:30", End: "06:00"}, ny, "2026-03-08T06:59:00Z", false, ""},
		{"NY spring: end in the skipped hour ends when the gap does", schedule.QuietHours{Start: "23:00", End: "02:30"}, ny, "2026-03-08T06:45:00Z", true, "2026-03-08T07:00:00Z"},
		// New York, fall back: 01:00-02:00 happens twice.
		{"NY fall: end in the repeated hour, first pass", schedule.QuietHours{Start: "22:00", End: "01:30"}, ny, "2026-11-01T05:15:00Z", true, "2026-11-01T05:30:00Z"},
		{"NY fall: end in the repeated hour, second pass ends at the second 01:30", schedule.QuietHours{Start: "22:00", End: "01:30"}, ny, "2026-11-01T06:15:00Z", true, "2026-11-01T06:30:00Z"},
		{"NY fall: between the two passes the clock is past the end", schedule.QuietHours{Start: "22:00", End: "01:30"}, ny, "2026-11-01T05:45:00Z", false, ""},
		{"NY fall: night is an hour longer", schedule.QuietHours{Start: "22:00", End: "07:00"}, ny, "2026-11-01T03:00:00Z", true, "2026-11-01T12:00:00Z"},
		{"NY fall: start in the repeated hour", schedule.QuietHours{Start: "01:30", End: "05:00"}, ny, "2026-11-01T06:40:00Z", true, "2026-11-01T10:00:00Z"},
		// London.
		{"London spring: end in the skipped hour", schedule.QuietHours{Start: "00:30", End: "01:30"}, ldn, "2026-03-29T00:45:00Z", true, "2026-03-29T01:00:00Z"},
		{"London spring: night across the gap", schedule.QuietHours{Start: "22:00", End: "07:00"}, ldn, "2026-03-28T23:00:00Z", true, "2026-03-29T06:00:00Z"},
		{"London fall: first pass of 01:20", schedule.QuietHours{Start: "23:00", End: "01:30"}, ldn, "2026-10-25T00:20:00Z", true, "2026-10-25T00:30:00Z"},
		{"London fall: second pass of 01:20", schedule.QuietHours{Start: "23:00", End: "01:30"}, ldn, "2026-10-25T01:20:00Z", true, "2026-10-25T01:30:00Z"},
		{"London fall: night is an hour longer", schedule.QuietHours{Start: "22:00", End: "07:00"}, ldn, "2026-10-24T22:00:00Z", true, "2026-10-25T07:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			end, quiet := c.q.Until(utc(c.at), c.loc)
			if quiet != c.quiet {
				t.Fatalf("Until(%s) quiet = %v, want %v", c.at, quiet, c.quiet)
			}
			if !quiet {
				return
			}
			if want := utc(c.end); !end.Equal(want) {
				t.Errorf("Until(%s) end = %s (%s local), want %s", c.at, end.UTC().Format(time.RFC3339), end.In(c.loc).Format("15:04 MST"), c.end)
			}
			if !end.After(utc(c.at)) {
				t.Errorf("end %s is not after %s", end, c.at)
			}
		})
	}
}

func TestQuietHoursValidate(t *testing.T) {
	cases := []struct {
		q    schedule.QuietHours
		want string // "" is valid
	}{
		{schedule.QuietHours{Start: "22:00", End: "07:00"}, ""},
		{schedule.QuietHours{Start: "7:00", End: "08:15"}, ""},
		{schedule.QuietHours{Start: "00:00", End: "23:59"}, ""},
		{schedule.QuietHours{Start: "24:00", End: "07:00"}, `start "24:00" is not a time of day`},
		{schedule.QuietHours{Start: "22:00", End: "07:60"}, `end "07:60" is not a time of day`},
		{schedule.QuietHours{Start: "22", End: "07:00"}, `start "22" is not a time of day`},
		{schedule.QuietHours{Start: "22:00", End: ""}, `end "" is not a time of day`},
		{schedule.QuietHours{Start: "10pm", End: "07:00"}, `start "10pm"`},
		{schedule.QuietHours{Start: "07:5", End: "09:00"}, `start "07:5"`},
		{schedule.QuietHours{Start: "07:00", End: "07:00"}, "start and end are both 07:00"},
	}
	for _, c := range cases {
		err := c.q.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: got %v, want valid", c.q, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: got %v, want an error containing %q", c.q, err, c.want)
		case c.want != "" && !errors.Is(err, schedule.ErrQuietHours):
			t.Errorf("%+v: %v does not wrap ErrQuietHours", c.q, err)
		}
	}
	// Invalid quiet hours hold nothing.
	if _, quiet := (schedule.QuietHours{Start: "x", End: "07:00"}).Until(time.Now(), time.UTC); quiet {
		t.Error("invalid quiet hours held an alert")
	}
}

// TestDay checks the local day alerts are counted under: 23 and 25
// hours long on the change days.
func TestDay(t *testing.T) {
	ny, ldn := mustLoc(t, "America/New_York"), mustLoc(t, "Europe/London")
	cases := []struct {
		loc   *time.Location
		at    string
		key   string
		hours float64
	}{
		{ny, "2026-03-08T12:00:00Z", "2026-03-08", 23},
		{ny, "2026-03-09T04:30:00Z", "2026-03-09", 24}, // 00:30 EDT
		{ny, "2026-03-09T03:30:00Z", "2026-03-08", 23}, // 23:30 EDT the day before
		{ny, "2026-11-01T12:00:00Z", "2026-11-01", 25},
		{ny, "2026-11-02T04:30:00Z", "2026-11-01", 25}, // 23:30 EST
		{ldn, "2026-03-29T12:00:00Z", "2026-03-29", 23},
		{ldn, "2026-10-25T23:30:00Z", "2026-10-25", 25},
		{ldn, "2026-10-25T23:59:59Z", "2026-10-25", 25},
	}
	for _, c := range cases {
		key, start, end := schedule.Day(utc(c.at), c.loc)
		if key != c.key {
			t.Errorf("Day(%s in %s) key = %s, want %s", c.at, c.loc, key, c.key)
		}
		if h := end.Sub(start).Hours(); h != c.hours {
			t.Errorf("Day(%s in %s) lasts %vh, want %vh", c.at, c.loc, h, c.hours)
		}
		if at := utc(c.at); at.Before(start) || !at.Before(end) {
			t.Errorf("Day(%s) = [%s, %s) does not hold it", c.at, start, end)
		}
	}
}

// TestDailyCap checks counting against max_alerts_per_day and when the
// "and N more" message goes out: the next send hour, DST-correct.
func TestDailyCap(t *testing.T) {
	for _, c := range []struct {
		max, sent int
		want      bool
	}{
		{0, 1000, true}, {5, 4, true}, {5, 5, false}, {1, 0, true}, {1, 1, false},
	} {
		if got := schedule.CapAllows(c.max, c.sent); got != c.want {
			t.Errorf("CapAllows(%d, %d) = %v, want %v", c.max, c.sent, got, c.want)
		}
	}
	for _, max := range []int{-1, schedule.MaxAlertsPerDay + 1} {
		if err := schedule.ValidateDailyCap(max); err == nil || !strings.Contains(err.Error(), "max_alerts_per_day") {
			t.Errorf("ValidateDailyCap(%d) = %v, want an error naming max_alerts_per_day", max, err)
		}
	}
	for _, max := range []int{0, 1, 20, schedule.MaxAlertsPerDay} {
		if err := schedule.ValidateDailyCap(max); err != nil {
			t.Errorf("ValidateDailyCap(%d) = %v", max, err)
		}
	}
	ny, ldn := mustLoc(t, "America/New_York"), mustLoc(t, "Europe/London")
	cases := []struct {
		name     string
		loc      *time.Location
		at       string
		sendHour int
		want     string
	}{
		{"later today", ny, "2026-06-10T11:00:00Z", 8, "2026-06-10T12:00:00Z"},
		{"tomorrow", ny, "2026-06-10T19:00:00Z", 8, "2026-06-11T12:00:00Z"},
		{"exactly at the send hour goes to the next one", ny, "2026-06-10T12:00:00Z", 8, "2026-06-11T12:00:00Z"},
		{"NY spring: send hour in the skipped hour", ny, "2026-03-08T05:30:00Z", 2, "2026-03-08T07:00:00Z"},
		{"NY spring: 8am after the change", ny, "2026-03-08T05:30:00Z", 8, "2026-03-08T12:00:00Z"},
		{"NY fall: a repeated send hour sends once", ny, "2026-11-01T05:30:00Z", 1, "2026-11-02T06:00:00Z"},
		{"NY fall: 8am after the change", ny, "2026-11-01T05:30:00Z", 8, "2026-11-01T13:00:00Z"},
		{"London spring: send hour 1 is skipped", ldn, "2026-03-29T00:30:00Z", 1, "2026-03-29T01:00:00Z"},
		{"London fall: 8am after the change", ldn, "2026-10-24T22:00:00Z", 8, "2026-10-25T08:00:00Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := schedule.RollupAt(utc(c.at), c.sendHour, c.loc); !got.Equal(utc(c.want)) {
				t.Errorf("RollupAt(%s, %d) = %s, want %s", c.at, c.sendHour, got.UTC().Format(time.RFC3339), c.want)
			}
		})
	}
}
