package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderReplayOf is set on an event republished from the DLQ stream: its
// sequence there.
const HeaderReplayOf = "Jobalert-Replay-Of"

// ErrDeadLetterNotFound is returned for a DLQ sequence that holds no
// message (never did, or replayed or removed since).
var ErrDeadLetterNotFound = errors.New("no such event in the DLQ stream")

// DeadLetter is one poison event in the DLQ stream, as deadLetter copied
// it there.
type DeadLetter struct {
	Seq             uint64    // its sequence in the DLQ stream
	Subject         string    // its subject there (jobs_dlq.created)
	OriginalSubject string    // the subject it was published on (Jobalert-Subject)
	Reason          string    // why it is poison (Jobalert-Error)
	StreamSeq       uint64    // its sequence in the events stream (Jobalert-Stream-Seq)
	MsgID           string    // its Nats-Msg-Id, when it had one (Jobalert-Msg-Id)
	Time            time.Time // when it was dead-lettered
	Size            int       // bytes of Data
	Data            []byte    // the event as published (nil from List)
}

// DLQ reads the dead-letter stream and replays its events into the events
// stream.
type DLQ struct {
	js             jetstream.JetStream
	stream, dlqStr string
}

// NewDLQ returns a DLQ over the streams cfg names (defaults as
// EnsureStreams').
func NewDLQ(js jetstream.JetStream, cfg StreamConfig) *DLQ {
	cfg = cfg.withDefaults()
	return &DLQ{js: js, stream: cfg.Stream, dlqStr: cfg.DLQStream}
}

// List returns up to limit dead letters with a sequence above after,
// oldest first, without their data. An empty result means there are no
// more.
func (d *DLQ) List(ctx context.Context, after uint64, limit int) ([]DeadLetter, error) {
	s, err := d.js.Stream(ctx, d.dlqStr)
	if err != nil {
		return nil, fmt.Errorf("DLQ stream %s: %w", d.dlqStr, err)
	}
	var out []DeadLetter
	for seq := after + 1; len(out) < limit; {
		// The next message at or after seq: deleted ones are skipped.
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(dlqAll))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("DLQ stream %s: read after %d: %w", d.dlqStr, seq-1, err)
		}
		dl := deadLetterOf(m)
		dl.Data = nil
		out = append(out, dl)
		seq = m.Sequence + 1
	}
	return out, nil
}

// Get returns the dead letter at seq, with its data.
func (d *DLQ) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	m, err := d.get(ctx, seq)
	if err != nil {
		return DeadLetter{}, err
	}
	return deadLetterOf(m), nil
}

func (d *DLQ) get(ctx context.Context, seq uint64) (*jetstream.RawStreamMsg, error) {
	s, err := d.js.Stream(ctx, d.dlqStr)
	if err != nil {
		return nil, fmt.Errorf("DLQ stream %s: %w", d.dlqStr, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && !strings.HasPrefix(m.Subject, dlqPrefix)) {
		return nil, ErrDeadLetterNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("DLQ stream %s: read %d: %w", d.dlqStr, seq, err)
	}
	return m, nil
}

// Replay republishes the dead letter at seq to the events stream, on its
// original subject with its original data (Nats-Msg-Id "replay-<seq>", so
// a replay retried within the duplicate window is published once), then
// deletes it from the DLQ stream. The consumer then handles it like any
// event: an event that is still poison comes back to the DLQ under a new
// sequence. It returns the event's subject and its new sequence in the
// events stream.
func (d *DLQ) Replay(ctx context.Context, seq uint64) (subject string, streamSeq uint64, err error) {
	m, err := d.get(ctx, seq)
	if err != nil {
		return "", 0, err
	}
	dl := deadLetterOf(m)
	subject = dl.OriginalSubject
	if subject == "" || !strings.HasPrefix(subject, "jobs.") {
		return "", 0, fmt.Errorf("DLQ event %d: no original subject under jobs. (got %q)", seq, subject)
	}
	msg := nats.NewMsg(subject)
	msg.Data = m.Data
	msg.Header.Set(HeaderReplayOf, strconv.FormatUint(seq, 10))
	ack, err := d.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(d.stream), jetstream.WithMsgID("replay-"+strconv.FormatUint(seq, 10)))
	if err != nil {
		return "", 0, fmt.Errorf("replay DLQ event %d to %s: %w", seq, subject, err)
	}
	s, err := d.js.Stream(ctx, d.dlqStr)
	if err == nil {
		err = s.DeleteMsg(ctx, seq)
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return subject, ack.Sequence, fmt.Errorf("DLQ event %d replayed as %s #%d, but not deleted from the DLQ (a second replay within %v publishes nothing): %w",
			seq, d.stream, ack.Sequence, DuplicateWindow, err)
	}
	return subject, ack.Sequence, nil
}

func deadLetterOf(m *jetstream.RawStreamMsg) DeadLetter {
	dl := DeadLetter{Seq: m.Sequence, Subject: m.Subject, Time: m.Time, Size: len(m.Data), Data: m.Data}
	if m.Header != nil {
		dl.OriginalSubject = m.Header.Get(HeaderSubject)
		dl.Reason = m.Header.Get(HeaderError)
		dl.MsgID = m.Header.Get(HeaderMsgID)
		dl.StreamSeq, _ = strconv.ParseUint(m.Header.Get(HeaderStreamSeq), 10, 64)
	}
	if dl.OriginalSubject == "" {
		// Copied without its headers: the DLQ subject mirrors the original.
		if rest, ok := strings.CutPrefix(m.Subject, dlqPrefix); ok && rest != "unknown" {
			dl.OriginalSubject = "jobs." + rest
		}
	}
	return dl
}
