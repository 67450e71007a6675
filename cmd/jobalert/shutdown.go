package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// shutdownBudget splits JOBALERT_SHUTDOWN_TIMEOUT between the steps of a
// shutdown, which run one after the other, so that the whole stays within
// the timeout (docs/operations.md, "Shutdown").
type shutdownBudget struct {
	// HTTP: stop accepting requests and finish the ones in progress.
	HTTP time.Duration
	// Intake: the consumer's fetch in progress returns (at most its
	// 100 ms MaxWait) and no more is fetched; the notifier claims no more
	// digests and hands back the ones it has not started; webhooks claim
	// no more deliveries.
	Intake time.Duration
	// InFlight: the batches in hand are recorded and acked, the sends in
	// progress finish. The consumer and the digester get Intake+InFlight
	// as their grace period once intake stops.
	InFlight time.Duration
	// Close: SMTP connections closed (QUIT), Redis closed, NATS drained
	// and closed.
	Close time.Duration
}

// splitShutdown gives HTTP 15% of total, intake 5%, in-flight work 60%
// and closing 20%.
func splitShutdown(total time.Duration) shutdownBudget {
	b := shutdownBudget{HTTP: total * 15 / 100, Intake: total * 5 / 100, InFlight: total * 60 / 100}
	b.Close = total - b.HTTP - b.Intake - b.InFlight
	return b
}

// grace is how long the consumer and the digester may keep working once
// intake stops.
func (b shutdownBudget) grace() time.Duration { return b.Intake + b.InFlight }

// natsEvents follows a NATS connection's life for the start and the
// close: why the last connection attempt failed, that it is closed
// (ClosedHandler), and the errors reported while draining.
type natsEvents struct {
	log *slog.Logger
	// countError, if set, counts an error by kind (async, reconnect).
	countError func(kind string)

	closed   chan struct{}
	once     sync.Once
	mu       sync.Mutex
	connErr  error
	draining bool
	errs     []error
}

func newNATSEvents(log *slog.Logger) *natsEvents {
	return &natsEvents{log: log, closed: make(chan struct{})}
}

// options are the connection options that feed it.
func (e *natsEvents) options() []nats.Option {
	return []nats.Option{
		nats.ClosedHandler(func(*nats.Conn) { e.once.Do(func() { close(e.closed) }) }),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			e.count("reconnect")
			e.mu.Lock()
			e.connErr = err
			e.mu.Unlock()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			e.count("async")
			e.mu.Lock()
			if e.draining {
				e.errs = append(e.errs, err)
			}
			e.mu.Unlock()
			if sub != nil {
				e.log.Warn("nats", "err", err, "subject", sub.Subject)
			} else {
				e.log.Warn("nats", "err", err)
			}
		}),
	}
}

func (e *natsEvents) count(kind string) {
	if e.countError != nil {
		e.countError(kind)
	}
}

// waitConnected waits until nc is connected, for at most timeout; the
// error says what the last attempt ran into.
func (e *natsEvents) waitConnected(ctx context.Context, nc *nats.Conn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !nc.IsConnected() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.mu.Lock()
			cause := e.connErr
			e.mu.Unlock()
			if cause == nil {
				cause = ctx.Err()
			}
			if cause == nil {
				cause = fmt.Errorf("status %s", nc.Status())
			}
			return fmt.Errorf("not connected within %v: %w", timeout, cause)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// drain drains nc and waits until it is closed or ctx is done (then it
// closes nc at once). It returns what went wrong, joined.
func (e *natsEvents) drain(ctx context.Context, nc *nats.Conn) error {
	e.mu.Lock()
	e.draining = true
	e.mu.Unlock()
	if err := nc.Drain(); err != nil {
		switch {
		case errors.Is(err, nats.ErrConnectionClosed):
			return nil
		case errors.Is(err, nats.ErrConnectionReconnecting):
			// Drain closed it: acks not flushed yet are lost, and their
			// events redelivered after the AckWait.
			return errors.New("not connected (reconnecting): closed without draining")
		}
		nc.Close()
		return fmt.Errorf("drain: %w", err)
	}
	select {
	case <-e.closed:
	case <-ctx.Done():
		nc.Close()
		return errors.New("drain did not finish within the close budget; closed")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.errs) > 0 {
		return fmt.Errorf("drain: %w", errors.Join(e.errs...))
	}
	return nil
}

// closeSteps runs the steps in order within budget and returns their
// errors, joined, each prefixed with its step's name. A step still running
// when the budget runs out is reported and left behind, and the steps
// after it are not run.
func closeSteps(budget time.Duration, steps []closeStep) error {
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	var errs []error
	for i, s := range steps {
		done := make(chan error, 1)
		go func() { done <- s.close(ctx) }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			select {
			case err = <-done:
			default:
				err = fmt.Errorf("did not close within the close budget of %v", budget)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", s.name, err))
		}
		if ctx.Err() != nil {
			for _, left := range steps[i+1:] {
				errs = append(errs, fmt.Errorf("close %s: not closed: the close budget of %v ran out", left.name, budget))
			}
			break
		}
	}
	return errors.Join(errs...)
}

type closeStep struct {
	name  string
	close func(context.Context) error
}
