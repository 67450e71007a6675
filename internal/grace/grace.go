// Package grace gives work a bounded grace period after a stop.
package grace

import (
	"context"
	"time"
)

// Period returns a context for in-flight work that outlives ctx by at
// most timeout: it is cancelled timeout after ctx is done, or when release
// is called. onStop, when not nil, runs as soon as ctx is done. Call
// release when the work is over.
func Period(ctx context.Context, timeout time.Duration, onStop func()) (work context.Context, release func()) {
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		if onStop != nil {
			onStop()
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-t.C:
			cancelWork()
		case <-work.Done():
		}
	})
	return work, func() {
		stop()
		cancelWork()
	}
}
