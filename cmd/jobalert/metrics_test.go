package main

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/internal/testenv"
)

func counterOf(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 {
		t.Fatalf("gather: %v %v", mfs, err)
	}
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}

// The hook counts what Redis refuses or cannot answer, not a missing key
// or a script to load.
func TestRedisHookCountsFailures(t *testing.T) {
	ctx := context.Background()
	rdb, prefix := testenv.Redis(t)
	errs := prometheus.NewCounter(prometheus.CounterOpts{Name: "errs"})
	rdb.AddHook(redisHook{errs: errs})

	_ = rdb.Get(ctx, prefix+"missing").Err()
	_ = redis.NewScript(`return 1`).Run(ctx, rdb, nil).Err() // NOSCRIPT, then EVAL
	pipe := rdb.Pipeline()
	pipe.Get(ctx, prefix+"missing")
	pipe.Set(ctx, prefix+"k", "v", time.Minute)
	_, _ = pipe.Exec(ctx)
	if got := counterOf(t, errs); got != 0 {
		t.Fatalf("missing keys and a script load: got %v errors, want 0", got)
	}

	_ = rdb.LPush(ctx, prefix+"k", "x").Err() // WRONGTYPE
	pipe = rdb.Pipeline()
	pipe.LPush(ctx, prefix+"k", "x")
	pipe.Get(ctx, prefix+"k")
	_, _ = pipe.Exec(ctx)
	if got := counterOf(t, errs); got != 2 {
		t.Fatalf("a refused command and a pipeline with one: got %v errors, want 2", got)
	}

	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)), MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	down.AddHook(redisHook{errs: errs})
	_ = down.Ping(ctx).Err()
	if got := counterOf(t, errs); got != 3 {
		t.Fatalf("a refused connection: got %v errors, want 3", got)
	}
}
