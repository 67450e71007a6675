package webhook

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replication. A write the primary has taken but not yet sent to a replica
// is lost if the primary dies and the replica is promoted. An enqueued
// delivery that is lost this way is never sent (the notifier has already
// marked it handed over), and a lost claim lets another replica send it
// too; so Enqueue and claim run their script and then WAIT, on the same
// connection of the primary of the {wh} slot, for Config.WaitReplicas
// replicas (docs/webhooks.md, "Redis keys"). An Enqueue not confirmed in
// time fails (its caller retries, a no-op if it was kept); a claim not
// confirmed in time is attempted anyway, as a lost claim costs at most a
// second attempt, and holding deliveries back for a slow replica would
// stall them all.

// waitTimeout bounds each WAIT.
const waitTimeout = time.Second

// autoRecheck is how long an automatic WaitReplicas decision holds before
// the primary's replicas are counted again.
const autoRecheck = 10 * time.Second

// replicas decides how many replicas to WAIT for, per WaitReplicas: n >
// 0 as set, 0 none, -1 (auto) one when the primary of the {wh} slot has a
// replica connected, counted again every autoRecheck and whenever another
// node has become that primary (a failover: the promoted replica has no
// replica of its own until the old primary comes back).
type replicas struct {
	mu      sync.Mutex
	n       int
	node    string // the primary counted
	checked time.Time
}

func (s *Service) waitFor(ctx context.Context, node *redis.Client) (int, error) {
	if s.cfg.WaitReplicas >= 0 {
		return s.cfg.WaitReplicas, nil
	}
	r := &s.replicas
	r.mu.Lock()
	defer r.mu.Unlock()
	addr := node.Options().Addr
	if addr == r.node && time.Since(r.checked) < autoRecheck {
		return r.n, nil
	}
	info, err := node.Info(ctx, "replication").Result()
	if err != nil {
		return 0, fmt.Errorf("count the replicas: %w", err)
	}
	r.n, r.node, r.checked = 0, addr, time.Now()
	for _, l := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(l, "connected_slaves:"); ok {
			if c, _ := strconv.Atoi(v); c > 0 {
				r.n = 1
			}
		}
	}
	return r.n, nil
}

// node is the client of the primary that holds key.
func (s *Service) node(ctx context.Context, key string) (*redis.Client, error) {
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.MasterForKey(ctx, key)
	case *redis.Client:
		return c, nil
	}
	return nil, fmt.Errorf("no primary of %T to WAIT on", s.rdb)
}

// runDurable runs script like Script.Run and, when replicas are to be
// waited for, WAITs for them on the same connection afterwards. cmd is
// the script's result; short is set when the script ran but WAIT saw
// fewer replicas than wanted within waitTimeout.
func (s *Service) runDurable(ctx context.Context, script *redis.Script, keys []string, args ...any) (cmd *redis.Cmd, short error) {
	if s.cfg.WaitReplicas == 0 {
		return script.Run(ctx, s.rdb, keys, args...), nil
	}
	fail := func(err error) *redis.Cmd {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	node, err := s.node(ctx, keys[0])
	if err != nil {
		return fail(err), nil
	}
	n, err := s.waitFor(ctx, node)
	if err != nil {
		return fail(err), nil
	}
	if n == 0 {
		return script.Run(ctx, s.rdb, keys, args...), nil
	}
	var wait *redis.Cmd
	_, err = node.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmd = script.Eval(ctx, p, keys, args...)
		wait = p.Do(ctx, "WAIT", n, waitTimeout.Milliseconds())
		return nil
	})
	switch {
	case cmd.Err() != nil:
		return cmd, nil
	case err != nil:
		return cmd, fmt.Errorf("WAIT for %d replicas: %w", n, err)
	}
	if got, _ := wait.Int64(); got < int64(n) {
		return cmd, fmt.Errorf("written, but on %d of %d replicas after %v", got, n, waitTimeout)
	}
	return cmd, nil
}
