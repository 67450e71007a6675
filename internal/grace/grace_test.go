package grace_test

import (
	"context"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/grace"
)

func TestWorkOutlivesTheStopByTheTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	work, release := grace.Period(ctx, 50*time.Millisecond, func() { close(stopped) })
	defer release()
	cancel()
	<-stopped
	if err := work.Err(); err != nil {
		t.Fatalf("work right after the stop: got %v, want nil", err)
	}
	select {
	case <-work.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("work not cancelled 5 s after a 50 ms grace period")
	}
}

func TestReleaseCancelsTheWork(t *testing.T) {
	work, release := grace.Period(context.Background(), time.Hour, nil)
	release()
	if work.Err() == nil {
		t.Fatal("work after release: got nil error, want canceled")
	}
}
