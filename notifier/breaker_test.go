package notifier

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel"
)

// After a hold, one send goes (the probe) however many workers ask at
// once; the others wait for its outcome. A failed probe holds the host
// twice as long; a successful one lets everyone through. Rate limits,
// refusals and shutdowns do not count as the host failing.
func TestBreakerSendsOneProbe(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	b := newBreaker(func() time.Time { return now })
	ctx := context.Background()
	down := &channel.TemporaryError{Err: errors.New("HTTP 503")}
	const host = "slack:hooks.slack.com"

	for i := range breakerThreshold - 1 {
		b.record(ctx, host, down)
		if d := b.held(host); d != 0 {
			t.Fatalf("after %d failures: held %v, want 0 (threshold %d)", i+1, d, breakerThreshold)
		}
	}
	// A rate limit is an answer of the service: it resets the count. A
	// send cut short by shutdown says nothing.
	b.record(ctx, host, &channel.TemporaryError{After: time.Second, Err: errors.New("429")})
	for range breakerThreshold - 1 {
		b.record(ctx, host, down)
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	b.record(stopped, host, down)
	if d := b.held(host); d != 0 {
		t.Fatalf("after a 429 then %d failures and one cut short: held %v, want 0", breakerThreshold-1, d)
	}
	b.record(ctx, host, down)
	if d := b.held(host); d != breakerFirstHold {
		t.Fatalf("after %d failures in a row: held %v, want %v", breakerThreshold, d, breakerFirstHold)
	}
	// A send begun before the hold fails during it: the hold stands.
	now = now.Add(5 * time.Second)
	b.record(ctx, host, down)
	if d := b.held(host); d != 10*time.Second {
		t.Fatalf("late failure during the hold: held %v, want the 10 s left", d)
	}

	probes := func() int {
		var (
			wg sync.WaitGroup
			mu sync.Mutex
			n  int
		)
		for range 4 { // the digest workers
			wg.Add(1)
			go func() {
				defer wg.Done()
				if b.held(host) == 0 {
					mu.Lock()
					n++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return n
	}
	now = now.Add(10 * time.Second)
	if n := probes(); n != 1 {
		t.Fatalf("after the hold: %d of 4 workers may send, want 1 probe", n)
	}
	b.record(ctx, host, down)
	if d := b.held(host); d != 2*breakerFirstHold {
		t.Fatalf("after a failed probe: held %v, want %v", d, 2*breakerFirstHold)
	}
	now = now.Add(2 * breakerFirstHold)
	if n := probes(); n != 1 {
		t.Fatalf("after the second hold: %d of 4 workers may send, want 1 probe", n)
	}
	// The probe hangs and never reports (cut short): after the window,
	// another goes.
	now = now.Add(breakerProbeWindow)
	if n := probes(); n != 1 {
		t.Fatalf("after a probe that never reported: %d of 4 may send, want 1", n)
	}
	b.record(ctx, host, nil)
	if n := probes(); n != 4 {
		t.Fatalf("after a successful probe: %d of 4 may send, want all", n)
	}
	for range 3 {
		b.record(ctx, host, errors.New("dial tcp: connection refused"))
	}
	b.record(ctx, host, channel.ErrPermanent)
	if d := b.held(host); d != 0 {
		t.Fatalf("a refusal is an answer: held %v, want 0", d)
	}
	// Hosts are held apart.
	for range breakerThreshold {
		b.record(ctx, "discord:discord.com", down)
	}
	if b.held("discord:discord.com") == 0 || b.held(host) != 0 {
		t.Errorf("one host's outage: discord held %v, slack held %v; want only discord", b.held("discord:discord.com"), b.held(host))
	}
}
