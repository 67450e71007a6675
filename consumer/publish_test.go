package consumer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/jobalert/jobalert/consumer"
)

func TestPublish(t *testing.T) {
	js := mustJetStream(t)
	var lines []string
	for i := range 600 { // more than the in-flight window
		lines = append(lines, jobBody(fmt.Sprintf("j%03d", i), "Backend Engineer"))
	}
	lines = append(lines, "", jobBody("j000", "Backend Engineer")) // a blank line and a duplicate id
	path := filepath.Join(t.TempDir(), "jobs.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var progress bytes.Buffer
	n, err := consumer.Publish(context.Background(), js, f, "", &progress)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if n != 601 {
		t.Errorf("published %d, want 601", n)
	}
	s, err := js.Stream(context.Background(), consumer.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != 600 {
		t.Errorf("stream holds %d messages, want 600 (the duplicate id deduplicated)", got)
	}
	m, err := s.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "jobs.created" || m.Header.Get(nats.MsgIdHdr) != "j000" {
		t.Errorf("first message: subject %q msg id %q", m.Subject, m.Header.Get(nats.MsgIdHdr))
	}
	if progress.Len() == 0 {
		t.Error("no progress written")
	}
}

func TestPublishStopsAtABadLine(t *testing.T) {
	js := mustJetStream(t)
	in := strings.Join([]string{
		jobBody("j1", "Backend Engineer"),
		jobBody("j2", "Go Developer"),
		`{"id":"j3","company":"Acme"}`,
		jobBody("j4", "SRE"),
	}, "\n")
	n, err := consumer.Publish(context.Background(), js, strings.NewReader(in), "jobs.updated", nil)
	if err == nil || err.Error() != `line 3: field "title": required` || !errors.Is(err, consumer.ErrPoison) {
		t.Fatalf("got %v, want the line 3 title error", err)
	}
	if n != 2 {
		t.Errorf("published %d, want 2", n)
	}
	s, _ := js.Stream(context.Background(), consumer.DefaultStream)
	if got := s.CachedInfo().State.Msgs; got != 2 {
		t.Errorf("stream holds %d messages, want 2", got)
	}
	m, _ := s.GetMsg(context.Background(), 2)
	if m == nil || m.Subject != "jobs.updated" {
		t.Errorf("second message: %+v", m)
	}
}

func TestPublishRejectsAnOverlongLine(t *testing.T) {
	js := mustJetStream(t)
	in := jobBody("j1", "t") + "\n" + `{"id":"j2","title":"t","company":"c","description":"` + strings.Repeat("x", consumer.MaxBody) + `"}` + "\n"
	n, err := consumer.Publish(context.Background(), js, strings.NewReader(in), "", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "line 2: ") {
		t.Fatalf("got %v, want a line 2 error", err)
	}
	if n != 1 {
		t.Errorf("published %d, want 1", n)
	}
}

// Publish checks each line as the consumer will, for the subject it
// publishes on: a jobs.closed line needs only its id. An unknown subject
// is refused before anything is published.
func TestPublishChecksForTheSubject(t *testing.T) {
	js := mustJetStream(t)
	n, err := consumer.Publish(context.Background(), js, strings.NewReader(`{"id":"j1"}`+"\n"+`{"id":"j2"}`), consumer.SubjectClosed, nil)
	if err != nil || n != 2 {
		t.Fatalf("closed events: got %d, %v, want 2, nil", n, err)
	}
	n, err = consumer.Publish(context.Background(), js, strings.NewReader(`{"id":"j3"}`), consumer.SubjectCreated, nil)
	if err == nil || err.Error() != `line 1: field "title": required` || n != 0 {
		t.Errorf("created event with an id only: got %d, %v, want 0 and the line 1 title error", n, err)
	}
	n, err = consumer.Publish(context.Background(), js, strings.NewReader(jobBody("j4", "SRE")), "jobs.reopened", nil)
	if !errors.Is(err, consumer.ErrPoison) || n != 0 {
		t.Errorf("unknown subject: got %d, %v, want 0 and a poison error", n, err)
	}
	s, _ := js.Stream(context.Background(), consumer.DefaultStream)
	if got := s.CachedInfo().State.Msgs; got != 2 {
		t.Errorf("stream holds %d messages, want 2", got)
	}
}

// An update and a close of a job published right after its creation are
// stored, not taken for duplicates of it; the same update again is one.
func TestPublishKeepsUpdatesAndCloses(t *testing.T) {
	js := mustJetStream(t)
	ctx := context.Background()
	for _, step := range []struct {
		subject, body string
	}{
		{consumer.SubjectCreated, jobBody("k1", "Backend Engineer")},
		{"jobs.updated", jobBody("k1", "Senior Backend Engineer")},
		{"jobs.updated", jobBody("k1", "Senior Backend Engineer")}, // a retried publish
		{"jobs.updated", jobBody("k1", "Staff Backend Engineer")},
		{consumer.SubjectClosed, `{"id":"k1"}`},
	} {
		if _, err := consumer.Publish(ctx, js, strings.NewReader(step.body), step.subject, nil); err != nil {
			t.Fatalf("%s: %v", step.subject, err)
		}
	}
	s, err := js.Stream(ctx, consumer.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != 4 {
		t.Errorf("got %d messages in the stream, want 4 (created, two distinct updates, closed)", got)
	}
}
