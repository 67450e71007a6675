package consumer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/schollz/progressbar/v3"

	"github.com/jobalert/jobalert/jobevent"
)

// publishWindow bounds the async publishes awaiting their ack.
const publishWindow = 256

// Publish reads JSONL job events from r, one job per line (blank lines are
// skipped), validates each with DecodeEvent(subject, line), the consumer's
// own check (so a jobs.closed line needs only its id), and publishes it to
// subject (jobs.created when empty) with a Nats-Msg-Id (msgID) that is the
// same for the same event and different for different events of one job,
// so a re-run within the stream's duplicate window publishes nothing twice
// and an update or a close is never taken for a duplicate of the job's
// earlier event (docs/events.md).
// Publishes are asynchronous with a bounded window of unacked messages.
// A progress bar is written to progress when it is non-nil.
//
// It returns how many events the stream acknowledged. A bad line stops it
// with an error naming the line number; lines before it are published,
// none after it.
func Publish(ctx context.Context, js jetstream.JetStream, r io.Reader, subject string, progress io.Writer) (n int, err error) {
	if subject == "" {
		subject = SubjectCreated
	}
	if _, err := KindOf(subject); err != nil {
		return 0, err
	}
	bar := newBar(r, progress)
	defer func() {
		if bar != nil {
			_ = bar.Finish()
			fmt.Fprintln(progress)
		}
	}()

	type pending struct {
		line   int
		future jetstream.PubAckFuture
	}
	var window []pending
	// settle waits for the oldest publishes until at most keep remain.
	settle := func(keep int) error {
		for len(window) > keep {
			p := window[0]
			select {
			case <-p.future.Ok():
			case err := <-p.future.Err():
				return fmt.Errorf("line %d: publish: %w", p.line, err)
			case <-ctx.Done():
				return ctx.Err()
			}
			window = window[1:]
			n++
		}
		return nil
	}

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxBody+1)
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		ev, err := DecodeEvent(subject, raw)
		if err != nil {
			if serr := settle(0); serr != nil {
				return n, serr
			}
			return n, fmt.Errorf("line %d: %w", line, err)
		}
		if err := settle(publishWindow - 1); err != nil {
			return n, err
		}
		m := nats.NewMsg(subject)
		m.Data = bytes.Clone(raw) // the scanner reuses its buffer; retries resend m
		f, err := js.PublishMsgAsync(m, jetstream.WithMsgID(msgID(ev, raw)))
		if err != nil {
			return n, fmt.Errorf("line %d: publish: %w", line, err)
		}
		window = append(window, pending{line: line, future: f})
		if bar != nil {
			_ = bar.Add(len(sc.Bytes()) + 1)
		}
	}
	if err := sc.Err(); err != nil {
		if serr := settle(0); serr != nil {
			return n, serr
		}
		if errors.Is(err, bufio.ErrTooLong) {
			return n, fmt.Errorf("line %d: %w", line+1, poisonf("body: longer than the %d KiB limit", MaxBody>>10))
		}
		return n, fmt.Errorf("read line %d: %w", line+1, err)
	}
	return n, settle(0)
}

// newBar returns a progress bar in bytes when r's size is known, else a
// spinner, or nil when w is nil.
func newBar(r io.Reader, w io.Writer) *progressbar.ProgressBar {
	if w == nil {
		return nil
	}
	size := int64(-1)
	if st, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("publishing"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
}

// msgID is the Nats-Msg-Id of an event, as docs/events.md suggests: the
// job id for jobs.created, the id and ":closed" for jobs.closed, and the
// id and a hash of the body for jobs.updated (one id per version).
func msgID(ev jobevent.Event, body []byte) string {
	switch ev.Kind {
	case jobevent.Closed:
		return ev.Job.ID + ":closed"
	case jobevent.Updated:
		h := sha256.Sum256(body)
		return ev.Job.ID + "@" + hex.EncodeToString(h[:8])
	}
	return ev.Job.ID
}
