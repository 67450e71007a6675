package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
)

// admin runs `jobalert admin args...` against the stack and returns its
// output, failing the test on an error.
func (s *stack) admin(args ...string) string {
	s.t.Helper()
	out, err := s.adminErr(args...)
	if err != nil {
		s.t.Fatalf("jobalert admin %v: %v", args, err)
	}
	return out
}

func (s *stack) adminErr(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	full := append([]string{"admin"}, args...)
	err := run(context.Background(), full, func(k string) string { return s.env[k] }, nil, &out, &errOut)
	return out.String(), err
}

// The poison events of JOBS_DLQ through the admin API and `jobalert admin
// dlq`: listed with their reasons, shown with their data, and replayed: an
// event dead-lettered by a since-fixed fault is delivered once replayed,
// and one still poison comes back to the DLQ under a new sequence. The
// other admin commands answer from the same stack.
func TestAdminDLQAndCLI(t *testing.T) {
	s := startStack(t, stackOpts{})
	base := s.env["JOBALERT_PUBLIC_URL"]
	ada := s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend"})

	// A poison event, and the copy of a good one that a fault (since fixed)
	// sent to the DLQ.
	s.publish("jobs.created", `{"id":"dlq-poison","company":"Acme"}`)
	good, _ := json.Marshal(job("dlq-good", "Backend Engineer"))
	m := nats.NewMsg("jobs_dlq.created")
	m.Data = good
	m.Header.Set(consumer.HeaderSubject, "jobs.created")
	m.Header.Set(consumer.HeaderError, "panic: index out of range (fixed since)")
	if _, err := s.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	dlq, err := s.js.Stream(context.Background(), "JOBS_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		info, err := dlq.Info(context.Background())
		return err == nil && info.State.Msgs == 2
	}, "want 2 events in JOBS_DLQ")

	var list struct {
		DeadLetters []struct {
			Seq             uint64 `json:"seq"`
			OriginalSubject string `json:"original_subject"`
			Reason          string `json:"reason"`
		} `json:"dead_letters"`
		NextAfter uint64 `json:"next_after"`
	}
	if err := json.Unmarshal([]byte(s.admin("dlq", "list", "--url", base)), &list); err != nil || len(list.DeadLetters) != 2 {
		t.Fatalf("admin dlq list: got %+v %v, want 2 events", list, err)
	}
	// Which arrives first is up to the consumer.
	poison, fixed := list.DeadLetters[0], list.DeadLetters[1]
	if strings.Contains(poison.Reason, "panic") {
		poison, fixed = fixed, poison
	}
	if !strings.Contains(poison.Reason, "title") || poison.OriginalSubject != "jobs.created" || !strings.Contains(fixed.Reason, "panic") {
		t.Errorf("admin dlq list: got %+v, want the poison event's reason naming the title, and the fixed one's", list.DeadLetters)
	}
	first := list.DeadLetters[0].Seq
	if err := json.Unmarshal([]byte(s.admin("dlq", "list", "--url", base, "--limit", "1")), &list); err != nil ||
		len(list.DeadLetters) != 1 || list.NextAfter != first {
		t.Errorf("admin dlq list --limit 1: got %+v %v, want one event and next_after %d", list, err, first)
	}
	show := s.admin("dlq", "show", "--url", base, strconv.FormatUint(poison.Seq, 10))
	if !strings.Contains(show, `"data": "{\"id\":\"dlq-poison\",\"company\":\"Acme\"}"`) {
		t.Errorf("admin dlq show: got %s, want the event's data", show)
	}

	// The fixed one, replayed, is matched and sent; it leaves the DLQ.
	var replayed struct {
		Subject   string `json:"subject"`
		StreamSeq uint64 `json:"stream_seq"`
	}
	if err := json.Unmarshal([]byte(s.admin("dlq", "replay", "--url", base, strconv.FormatUint(fixed.Seq, 10))), &replayed); err != nil ||
		replayed.Subject != "jobs.created" || replayed.StreamSeq == 0 {
		t.Fatalf("admin dlq replay: got %+v %v, want jobs.created and its new sequence", replayed, err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return s.mailsWith("ada@example.com", "dlq-good") == 1 }, "replayed job not delivered")
	if _, err := s.adminErr("dlq", "show", "--url", base, strconv.FormatUint(fixed.Seq, 10)); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("admin dlq show of a replayed event: got %v, want a 404", err)
	}
	// The poison one, replayed through the API, comes back under a new
	// sequence.
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/admin/jobs/dead-letters/"+strconv.FormatUint(poison.Seq, 10)+"/replay", nil)
	req.Header.Set("Authorization", "Bearer "+s.env["JOBALERT_ADMIN_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r := read(t, resp); r.StatusCode != http.StatusAccepted {
		t.Fatalf("replay through the API: got %d %s, want 202", r.StatusCode, r.body)
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		info, err := dlq.Info(context.Background())
		return err == nil && info.State.Msgs == 1 && info.State.FirstSeq > max(fixed.Seq, poison.Seq)
	}, "want the still-poison event back in the DLQ under a new sequence")

	// The other commands, on the same stack.
	if out := s.admin("find", "--url", base, "ada@example.com"); !strings.Contains(out, ada.ID) || !strings.Contains(out, `"suppressed": false`) {
		t.Errorf("admin find: got %s, want ada's subscription, not suppressed", out)
	}
	if out := s.admin("stats", "--url", base); !strings.Contains(out, `"total": 1`) || !strings.Contains(out, `"active": 1`) {
		t.Errorf("admin stats: got %s, want one active subscription", out)
	}
	if out := s.admin("suppressions", "count", "--url", base); !strings.Contains(out, `"suppressed": 0`) {
		t.Errorf("admin suppressions count: got %s, want 0", out)
	}
	if out := s.admin("suppressions", "lift", "--url", base, "ada@example.com"); !strings.Contains(out, `"lifted": false`) {
		t.Errorf("admin suppressions lift: got %s, want lifted false", out)
	}
	// The URL defaults to JOBALERT_PUBLIC_URL; a wrong token is a 403.
	if out := s.admin("suppressions", "count"); !strings.Contains(out, `"suppressed": 0`) {
		t.Errorf("admin without --url: got %s, want the answer of JOBALERT_PUBLIC_URL", out)
	}
	s.env["JOBALERT_ADMIN_TOKEN"] = "wrong-token"
	if _, err := s.adminErr("stats"); err == nil || !strings.Contains(err.Error(), "403 Forbidden: wrong admin token") {
		t.Errorf("a wrong token: got %v, want 403 Forbidden: wrong admin token", err)
	}
}
