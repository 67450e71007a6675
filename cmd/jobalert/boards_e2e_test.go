package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/preview"
)

// A repost under a new id reaches nobody who got the original, reaches a
// subscription created after the original, links to the newest posting,
// and `admin job` shows what it was collapsed into.
func TestRepostReachesOnlyNewSubscribers(t *testing.T) {
	s := startStack(t, stackOpts{})
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend"})
	s.publishJob("jobs.created", job("b1-orig", "Backend Engineer"))
	s.waitMail("ada@example.com", 1)

	s.subscribe("bob@example.com", matcher.Filter{Keywords: "backend"})
	repost := job("b1-repost", "Back-end  engineer") // same company, title and first location, normalised
	s.publishJob("jobs.created", repost)
	// A later, different job proves ada's silence about the repost.
	s.publishJob("jobs.created", job("b1-next", "Backend Developer"))
	testenv.Eventually(t, 15*time.Second, func() bool {
		return s.mailsWith("ada@example.com", "b1-next") == 1 && s.mailsWith("bob@example.com", "b1-next") == 1
	}, "the later job not delivered to both")
	if got := s.mailsWith("ada@example.com", "b1-repost"); got != 0 {
		t.Errorf("ada, who got the original: got %d emails with the repost, want 0", got)
	}
	if got := s.mailsWith("ada@example.com", "/b1-orig"); got != 1 {
		t.Errorf("ada: got %d emails with the original, want 1", got)
	}
	if got := s.mailsWith("bob@example.com", "/b1-repost"); got != 1 {
		t.Errorf("bob, subscribed after the original: got %d emails linking the repost, want 1", got)
	}
	if got := s.mailsWith("bob@example.com", "/b1-orig"); got != 0 {
		t.Errorf("bob: got %d emails linking the old posting, want 0 (the link is the newest posting's)", got)
	}
	info, err := s.app.store.RepostLookup(context.Background(), "b1-repost")
	if err != nil || info.Of != "b1-orig" || info.Reason != jobevent.RepostSameRole {
		t.Errorf("lookup b1-repost: got %+v, %v want of b1-orig by same_role", info, err)
	}
	if out := s.admin("job", "b1-repost"); !strings.Contains(out, `"of": "b1-orig"`) || !strings.Contains(out, `"reason": "same_role"`) {
		t.Errorf("jobalert admin job b1-repost: got %s want of b1-orig, reason same_role", out)
	}
}

// A job that says it does not sponsor reaches no visa filter;
// include_unknown_visa brings in the jobs that do not say, and only them.
func TestSponsorshipOnTheRealStack(t *testing.T) {
	s := startStack(t, stackOpts{})
	s.subscribe("strict@example.com", matcher.Filter{Keywords: "engineer", VisaTypes: []string{"H-1B"}})
	s.subscribe("open@example.com", matcher.Filter{Keywords: "engineer", VisaTypes: []string{"H-1B"}, IncludeUnknownVisa: true})
	s.subscribe("any@example.com", matcher.Filter{Keywords: "engineer"})

	no := job("v-no", "Platform Engineer", "H-1B")
	no.VisaSponsorship = "no"
	unknown := job("v-unknown", "Data Engineer") // no visa types: unknown
	tn := job("v-tn", "Site Reliability Engineer", "TN")
	h1b := job("v-h1b", "Backend Engineer", "H-1B")
	for _, j := range []matcher.Job{no, unknown, tn, h1b} {
		s.publishJob("jobs.created", j)
	}
	testenv.Eventually(t, 15*time.Second, func() bool {
		return s.mailsWith("strict@example.com", "v-h1b") == 1 && s.mailsWith("open@example.com", "v-h1b") == 1 &&
			s.mailsWith("any@example.com", "v-h1b") == 1
	}, "the H-1B job not delivered to every subscriber")
	want := map[string]map[string]int{
		"strict@example.com": {"v-no": 0, "v-unknown": 0, "v-tn": 0, "v-h1b": 1},
		"open@example.com":   {"v-no": 0, "v-unknown": 1, "v-tn": 0, "v-h1b": 1},
		"any@example.com":    {"v-no": 1, "v-unknown": 1, "v-tn": 1, "v-h1b": 1},
	}
	// Every job was recorded before the last one arrived in each inbox
	// only if they were in one batch; wait for the others explicitly.
	testenv.Eventually(t, 15*time.Second, func() bool {
		return s.mailsWith("any@example.com", "v-no") == 1 && s.mailsWith("any@example.com", "v-tn") == 1 &&
			s.mailsWith("open@example.com", "v-unknown") == 1
	}, "the other jobs not delivered")
	for addr, jobs := range want {
		for id, n := range jobs {
			if got := s.mailsWith(addr, "/"+id); got != n {
				t.Errorf("%s: got %d emails with %s, want %d", addr, got, id, n)
			}
		}
	}
	for _, m := range s.sink.To("open@example.com") {
		if strings.Contains(m.Text, "/v-unknown") && !strings.Contains(m.Text, "sponsorship not stated") {
			t.Errorf("open's email with the unknown job does not say \"sponsorship not stated\":\n%s", m.Text)
		}
	}
}

// The api role's live preview sees the jobs of the stream.
func TestPreviewOnTheRealStack(t *testing.T) {
	s := startStack(t, stackOpts{})
	s.publishJob("jobs.created", job("p-1", "Backend Engineer", "H-1B"))
	unknown := job("p-2", "Backend Developer")
	s.publishJob("jobs.created", unknown)
	body := []byte(`{"filter":{"keywords":"backend","visa_types":["H-1B"],"include_unknown_visa":true}}`)
	var got preview.Result
	testenv.Eventually(t, 15*time.Second, func() bool {
		resp, err := http.Post(s.env["JOBALERT_PUBLIC_URL"]+"/v1/preview", "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		got = preview.Result{}
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&got) == nil && got.Last7Days == 2
	}, "preview: got %+v, want 2 jobs last week", got)
	if len(got.Newest) != 2 || got.Newest[0].Title == "" || got.Newest[1].Company != "Starbucks" {
		t.Errorf("preview newest: got %+v", got.Newest)
	}
}
