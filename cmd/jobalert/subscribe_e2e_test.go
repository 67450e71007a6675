package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/store"
)

// The whole life of a subscriber, through the real API, NATS, Redis and
// SMTP: subscribe, confirm from the email, get an alert carrying RFC 8058
// headers, leave with one click, get nothing more.
func TestSubscribeConfirmAlertOneClickUnsubscribe(t *testing.T) {
	s := startStack(t, stackOpts{})
	base := s.env["JOBALERT_PUBLIC_URL"]

	resp := post(t, base+"/v1/subscriptions", "application/json",
		`{"email":"cam@example.com","filter":{"keywords":"backend engineer","visa_types":["h1b"]},"frequency":"instant","timezone":"America/Los_Angeles"}`)
	if resp.StatusCode != http.StatusCreated || !strings.Contains(resp.body, `"status":"pending"`) {
		t.Fatalf("subscribe: got %d %s, want 201 pending", resp.StatusCode, resp.body)
	}

	// Pending: a matching job is not sent.
	s.publishJob("jobs.created", job("pending-1", "Backend Engineer", "H-1B"))
	testenv.Eventually(t, 10*time.Second, func() bool { return s.pendingAcks() == 0 }, "event not consumed")

	confirmMail := s.waitMail("cam@example.com", 1)[0]
	link := regexp.MustCompile(`https?://[^\s"<>]+/v1/confirm\?token=[A-Za-z0-9_\-.%]+`).FindString(confirmMail.Text)
	if link == "" {
		t.Fatalf("confirmation email: no confirm link in:\n%s", confirmMail.Text)
	}
	page := get(t, link)
	if page.StatusCode != http.StatusOK || !strings.Contains(page.body, "<form") {
		t.Fatalf("GET confirm link: got %d, want 200 with a form (GET must not confirm)", page.StatusCode)
	}
	u, _ := url.Parse(link)
	tok := u.Query().Get("token")
	if r := post(t, base+"/v1/confirm", "application/x-www-form-urlencoded", "token="+url.QueryEscape(tok)); r.StatusCode != http.StatusOK {
		t.Fatalf("POST confirm: got %d %s, want 200", r.StatusCode, r.body)
	}
	subs, err := s.app.store.SubscriptionsByEmail(t.Context(), "cam@example.com")
	if err != nil || len(subs) != 1 || subs[0].Status != store.StatusActive {
		t.Fatalf("after confirm: got %v %v, want one active subscription", subs, err)
	}
	testenv.Eventually(t, 2*time.Second, func() bool {
		return containsID(s.app.index.MatchIDs(probeJob(subs[0].Filter)), subs[0].ID)
	}, "confirmed subscription not in the index within 2s")

	s.publishJob("jobs.created", job("live-1", "Senior Backend Engineer", "H-1B"))
	testenv.Eventually(t, 10*time.Second, func() bool { return s.mailsWith("cam@example.com", "live-1") == 1 }, "alert not delivered")
	if n := s.mailsWith("cam@example.com", "pending-1"); n != 0 {
		t.Fatalf("job published while pending: got %d emails, want 0", n)
	}
	var alert = s.sink.To("cam@example.com")[1]
	unsub := strings.Trim(alert.Header.Get("List-Unsubscribe"), "<>")
	if !strings.HasPrefix(unsub, base+"/v1/unsubscribe?token=") || alert.Header.Get("List-Unsubscribe-Post") != "List-Unsubscribe=One-Click" {
		t.Fatalf("alert headers: got List-Unsubscribe %q, List-Unsubscribe-Post %q", unsub, alert.Header.Get("List-Unsubscribe-Post"))
	}
	// RFC 8058: a POST with this body, no cookies, no other state.
	if r := post(t, unsub, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click"); r.StatusCode != http.StatusOK {
		t.Fatalf("one-click unsubscribe: got %d %s, want 200", r.StatusCode, r.body)
	}
	testenv.Eventually(t, 2*time.Second, func() bool { return !containsID(s.app.index.MatchIDs(probeJob(subs[0].Filter)), subs[0].ID) },
		"unsubscribed subscription still in the index")

	s.publishJob("jobs.created", job("after-unsub", "Backend Engineer", "H-1B"))
	// A second subscriber for the same job proves the job went through.
	s.subscribe("dee@example.com", subs[0].Filter)
	s.publishJob("jobs.created", job("after-unsub-2", "Backend Engineer", "H-1B"))
	testenv.Eventually(t, 10*time.Second, func() bool { return s.mailsWith("dee@example.com", "after-unsub-2") == 1 }, "control subscriber got nothing")
	if n := len(s.sink.To("cam@example.com")); n != 2 {
		t.Fatalf("emails to the unsubscribed address: got %d, want 2 (confirmation and one alert)", n)
	}
}

type response struct {
	*http.Response
	body string
}

func post(t *testing.T, u, ctype, body string) response {
	t.Helper()
	resp, err := http.Post(u, ctype, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func get(t *testing.T, u string) response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return read(t, resp)
}

func read(t *testing.T, resp *http.Response) response {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp, string(b)}
}
