package liveness_test

import (
	"context"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/liveness"
	"github.com/jobalert/jobalert/internal/testenv"
)

func TestAliveWhileBeatingDeadAfterRetire(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	a := liveness.New(rdb, prefix, "web-1").WithTiming(time.Second, 50*time.Millisecond)
	b := liveness.New(rdb, prefix, "web-2")

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx, func(err error) { t.Errorf("beat: %v", err) }) }()
	testenv.Eventually(t, 5*time.Second, func() bool {
		got, err := b.Alive(ctx, a.Owner())
		return err == nil && got[a.Owner()]
	}, "a never looked alive to b")

	// Beats keep the key alive past its TTL: it is checked over 2.5 TTLs.
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		got, err := b.Alive(ctx, a.Owner(), b.Owner(), "", "web-3/abc")
		if err != nil {
			t.Fatal(err)
		}
		if !got[a.Owner()] || got[b.Owner()] || got[""] || got["web-3/abc"] {
			t.Fatalf("got %v, want only %s alive (b never beat)", got, a.Owner())
		}
		time.Sleep(100 * time.Millisecond)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	got, err := b.Alive(ctx, a.Owner())
	if err != nil || got[a.Owner()] {
		t.Fatalf("after a clean stop: got %v, %v, want a dead at once", got, err)
	}
}

// A process that dies without cleanup (kill -9) looks dead once its last
// beat expires.
func TestDeadAfterTTLWithoutCleanup(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	ctx := context.Background()
	a := liveness.New(rdb, prefix, "web-1").WithTiming(300*time.Millisecond, 100*time.Millisecond)
	if err := a.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	other := liveness.New(rdb, prefix, "web-2")
	got, err := other.Alive(ctx, a.Owner())
	if err != nil || !got[a.Owner()] {
		t.Fatalf("right after a beat: got %v, %v, want alive", got, err)
	}
	start := time.Now()
	testenv.Eventually(t, 5*time.Second, func() bool {
		got, err := other.Alive(ctx, a.Owner())
		return err == nil && !got[a.Owner()]
	}, "a still alive long after its TTL (%s)", a.TTL())
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("a looked dead after %s, want not before its TTL (%s)", time.Since(start), a.TTL())
	}
}

func TestSameInstance(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	before := liveness.New(rdb, prefix, "web-1")
	a := liveness.New(rdb, prefix, "web-1")
	after := liveness.New(rdb, prefix, "web-1")
	other := liveness.New(rdb, prefix, "web-10")
	for _, c := range []struct {
		owner string
		want  bool
	}{
		{before.Owner(), true}, // an earlier boot of web-1
		{after.Owner(), false}, // a later one: a live process given the same name
		{a.Owner(), false},     // itself
		{other.Owner(), false},
		{"web-1", false}, // no boot id: not an owner id
		{"", false},
	} {
		if got := a.SameInstance(c.owner); got != c.want {
			t.Errorf("SameInstance(%q) for %s: got %v, want %v", c.owner, a.Owner(), got, c.want)
		}
	}
	if a.Owner() == after.Owner() {
		t.Errorf("two boots share the owner id %s, want a fresh boot id each", a.Owner())
	}
}
