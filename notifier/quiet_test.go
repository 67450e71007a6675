package notifier_test

import (
	"context"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
)

var instantNY = schedule.Spec{Frequency: "instant", Timezone: "America/New_York", SendHour: 8}

// Instant alerts inside quiet hours wait for their end and go out as one,
// on both daylight-saving nights (the window is a minute: an alert is
// due a minute after its match).
func TestQuietHoursHoldAndCoalesceAcrossDST(t *testing.T) {
	ny := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, newYork) }
	quiet := &schedule.QuietHours{Start: "22:00", End: "07:00"}
	for _, tc := range []struct {
		name    string
		matches []time.Time
		end     time.Time // 07:00 local
	}{
		{"spring forward", []time.Time{
			ny(2026, 3, 7, 23, 0),
			ny(2026, 3, 8, 1, 30),                        // EST
			time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC), // 03:30 EDT, after the skipped hour
		}, time.Date(2026, 3, 8, 11, 0, 0, 0, time.UTC)}, // 07:00 EDT
		{"fall back", []time.Time{
			ny(2026, 10, 31, 23, 0),
			time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), // 01:30 EDT
			time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), // 01:30 EST, the repeated hour
		}, time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}, // 07:00 EST
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newDigestEnv(t)
			c := newChats()
			d := e.digester(c.config(notifier.DigestConfig{}))
			sub := e.subscribe("ada@example.com", instantNY, tc.matches[0].Add(-time.Hour))
			e.withChannels(sub, tc.matches[0].Add(-time.Hour), "email", "slack")
			e.update(sub.ID, tc.matches[0].Add(-time.Hour), func(s *store.Subscription) { s.QuietHours = quiet })

			e.match(tc.matches[0], newJob("j1", "Backend Engineer"), sub)
			run(t, d, tc.matches[0].Add(time.Minute), notifier.RunResult{Held: 1})
			for i, m := range tc.matches[1:] {
				e.match(m, newJob([]string{"j2", "j3"}[i], "Backend Engineer"), sub)
				run(t, d, m.Add(time.Minute), notifier.RunResult{}) // held already, until the end
			}
			// An hour off (the offset before the change) is still quiet.
			run(t, d, tc.end.Add(-time.Hour), notifier.RunResult{})
			run(t, d, tc.end.Add(-time.Millisecond), notifier.RunResult{})
			wantMails(t, e, "ada@example.com", 0)
			wantPosts(t, "slack", c.slack)

			run(t, d, tc.end, notifier.RunResult{Sent: 1})
			wantListed(t, wantMails(t, e, "ada@example.com", 1)[0], []string{"j1", "j2", "j3"})
			if p := wantPosts(t, "slack", c.slack, 0)[0]; len(p.msg.Jobs) != 3 || p.msg.Kind != channel.Alert {
				t.Errorf("slack: got %d jobs of kind %v, want the 3 held as one alert", len(p.msg.Jobs), p.msg.Kind)
			}
			// After the quiet hours, an alert goes at once.
			e.match(tc.end.Add(time.Hour), newJob("j4", "Backend Engineer"), sub)
			run(t, d, tc.end.Add(time.Hour+time.Minute), notifier.RunResult{Sent: 1})
		})
	}
}

// With max_alerts_per_day 2, the third alert of the day is held and comes
// with everything after it as one rollup at the send hour, whatever the
// quiet hours; the next local day counts from zero.
func TestDailyCapRollsUpAtTheSendHour(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	d := e.digester(c.config(notifier.DigestConfig{}))
	// In the future: the day's count expires with its day by Redis's clock.
	ny := func(day, h int) time.Time { return time.Date(2036, 12, day, h, 0, 0, 0, newYork) }
	sub := e.subscribe("ada@example.com", instantNY, ny(1, 9))
	e.withChannels(sub, ny(1, 9), "email", "slack")
	e.update(sub.ID, ny(1, 9), func(s *store.Subscription) {
		s.MaxAlertsPerDay = 2
		// Quiet when the rollup is due: it goes at its time anyway.
		s.QuietHours = &schedule.QuietHours{Start: "06:00", End: "09:00"}
	})
	alerts := func(day string) int {
		t.Helper()
		n, err := e.st.AlertsSent(context.Background(), []string{sub.ID}, []string{day})
		if err != nil {
			t.Fatal(err)
		}
		return n[0]
	}

	e.match(ny(1, 10), newJob("j1", "Backend Engineer"), sub)
	run(t, d, ny(1, 10).Add(time.Minute), notifier.RunResult{Sent: 1})
	e.match(ny(1, 11), newJob("j2", "Backend Engineer"), sub)
	run(t, d, ny(1, 11).Add(time.Minute), notifier.RunResult{Sent: 1})
	e.match(ny(1, 12), newJob("j3", "Backend Engineer"), sub)
	run(t, d, ny(1, 12).Add(time.Minute), notifier.RunResult{Held: 1})
	e.match(ny(1, 13), newJob("j4", "Backend Engineer"), sub)
	run(t, d, ny(1, 13).Add(time.Minute), notifier.RunResult{}) // waits for the rollup already
	run(t, d, ny(2, 7), notifier.RunResult{})
	if got := alerts("2036-12-01"); got != 2 {
		t.Errorf("alerts counted on Dec 1: got %d, want 2", got)
	}
	wantMails(t, e, "ada@example.com", 2)

	run(t, d, ny(2, 8), notifier.RunResult{Sent: 1})
	m := wantMails(t, e, "ada@example.com", 3)[2]
	if want := `2 more "backend engineer" jobs matched after your daily limit`; m.Subject != want {
		t.Errorf("rollup subject: got %q, want %q", m.Subject, want)
	}
	wantListed(t, m, []string{"j3", "j4"}, "j1", "j2")
	p := wantPosts(t, "slack", c.slack, 0, 0, 0)[2]
	if p.msg.Kind != channel.CapRollup || p.msg.Heading() != m.Subject {
		t.Errorf("slack rollup: got kind %v heading %q, want CapRollup %q", p.msg.Kind, p.msg.Heading(), m.Subject)
	}
	if got := alerts("2036-12-02"); got != 0 {
		t.Errorf("alerts counted on Dec 2 after the rollup: got %d, want 0 (a rollup is not counted)", got)
	}

	// A new local day: two alerts go out again, the third is held.
	for i, h := range []int{10, 11} {
		e.match(ny(2, h), newJob([]string{"j5", "j6"}[i], "Backend Engineer"), sub)
		run(t, d, ny(2, h).Add(time.Minute), notifier.RunResult{Sent: 1})
	}
	if m := wantMails(t, e, "ada@example.com", 5)[3]; m.Subject != `1 new "backend engineer" job` {
		t.Errorf("alert after the rollup: got subject %q, want an ordinary alert", m.Subject)
	}
	e.match(ny(2, 12), newJob("j7", "Backend Engineer"), sub)
	run(t, d, ny(2, 12).Add(time.Minute), notifier.RunResult{Held: 1})
	run(t, d, ny(3, 8), notifier.RunResult{Sent: 1})
	wantListed(t, wantMails(t, e, "ada@example.com", 6)[5], []string{"j7"})
}
