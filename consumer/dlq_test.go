package consumer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/testenv"
)

// The DLQ lists its events oldest first in pages, skipping removed ones,
// and a replay puts an event back on its original subject with its data
// and takes it out of the DLQ, once.
func TestDLQListGetReplay(t *testing.T) {
	js, err := jetstream.New(testenv.NATSConn(t, testenv.NATS(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := consumer.EnsureStreams(ctx, js, consumer.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	dead := func(subject, data, reason string) {
		m := nats.NewMsg("jobs_dlq." + subject[len("jobs."):])
		m.Data = []byte(data)
		m.Header.Set(consumer.HeaderError, reason)
		m.Header.Set(consumer.HeaderSubject, subject)
		m.Header.Set(consumer.HeaderStreamSeq, "41")
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	dead("jobs.created", `{"id":"a"}`, "title: missing")
	dead("jobs.updated", `{"id":"b"}`, "company: missing")
	dead("jobs.closed", "\xff\xfe", "not JSON")
	dlq := consumer.NewDLQ(js, consumer.StreamConfig{})

	page, err := dlq.List(ctx, 0, 2)
	if err != nil || len(page) != 2 || page[0].Seq != 1 || page[1].Seq != 2 || page[0].Data != nil || page[0].Size != 10 {
		t.Fatalf("first page: got %+v %v, want seqs 1 and 2 without data, size 10", page, err)
	}
	if p := page[1]; p.OriginalSubject != "jobs.updated" || p.Reason != "company: missing" || p.StreamSeq != 41 || p.Subject != "jobs_dlq.updated" {
		t.Errorf("second event: got %+v, want jobs.updated, its reason and stream seq 41", p)
	}
	got, err := dlq.Get(ctx, 1)
	if err != nil || string(got.Data) != `{"id":"a"}` {
		t.Fatalf("Get(1): got %+v %v, want its data", got, err)
	}

	subject, seq, err := dlq.Replay(ctx, 1)
	if err != nil || subject != "jobs.created" || seq != 1 {
		t.Fatalf("Replay(1): got %q #%d %v, want jobs.created #1 in JOBS", subject, seq, err)
	}
	s, _ := js.Stream(ctx, "JOBS")
	m, err := s.GetMsg(ctx, seq)
	if err != nil || m.Subject != "jobs.created" || string(m.Data) != `{"id":"a"}` || m.Header.Get(consumer.HeaderReplayOf) != "1" {
		t.Fatalf("replayed event: got %+v %v, want jobs.created with the data and Jobalert-Replay-Of 1", m, err)
	}
	for _, f := range []func() error{
		func() error { _, _, err := dlq.Replay(ctx, 1); return err },
		func() error { _, err := dlq.Get(ctx, 1); return err },
		func() error { _, err := dlq.Get(ctx, 99); return err },
	} {
		if err := f(); !errors.Is(err, consumer.ErrDeadLetterNotFound) {
			t.Errorf("a replayed or unknown event: got %v, want ErrDeadLetterNotFound", err)
		}
	}
	rest, err := dlq.List(ctx, 0, 10)
	if err != nil || len(rest) != 2 || rest[0].Seq != 2 || rest[1].Seq != 3 {
		t.Fatalf("after the replay: got %+v %v, want seqs 2 and 3", rest, err)
	}
	if more, err := dlq.List(ctx, 3, 10); err != nil || len(more) != 0 {
		t.Errorf("after the last: got %+v %v, want none", more, err)
	}
}
