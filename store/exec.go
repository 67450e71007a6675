package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/internal/clock"
)

// evalEach runs n calls of one script, pipelined, and returns their
// values. Every call is one slot's (its keys in KEYS). It is how the
// record steps and the claims write, with these guarantees:
//   - a call that failed with NOSCRIPT did not run: when Redis lost its
//     scripts (a restart, SCRIPT FLUSH), those calls run again once the
//     script is loaded; the others ran and must not run twice;
//   - with Config.WaitReplicas > 0, each pipeline ends with WAIT on the
//     connection that carried the writes (WAIT counts that connection's
//     writes): on one server, the pipeline itself; on a cluster, one
//     pipeline per primary (ClusterClient.MasterForKey), in parallel. Fewer
//     replicas than asked within Config.WaitTimeout fail the call: the
//     event is not acked, the email not sent, and the step runs again;
//   - talking to a cluster's primaries directly bypasses the cluster
//     client's redirections, so a call refused with MOVED, ASK, TRYAGAIN or
//     CLUSTERDOWN (it did not run) runs again after the slot map is
//     reloaded, at most clusterRetries times.
//
// Without WAIT, one pipeline goes through the client, which splits it per
// node on a cluster and follows redirections itself.
func (s *Redis) evalEach(ctx context.Context, sc *redis.Script, n int, keys func(int) []string, args func(int) []any) ([]any, error) {
	out := make([]any, n)
	todo := make([]int, n)
	for i := range todo {
		todo[i] = i
	}
	loaded := false
	for attempt := 0; len(todo) > 0; attempt++ {
		errs := make([]error, n)
		if err := s.runCalls(ctx, sc, todo, keys, args, out, errs); err != nil {
			s.reloadOnNodeError(ctx, err)
			return nil, err
		}
		var noscript, moved []int
		for _, i := range todo {
			switch err := errs[i]; {
			case err == nil:
			case redis.HasErrorPrefix(err, "NOSCRIPT") && !loaded:
				noscript = append(noscript, i)
			case isRedirect(err) && attempt < clusterRetries:
				moved = append(moved, i)
			default:
				s.reloadOnNodeError(ctx, err)
				return nil, err
			}
		}
		if len(noscript) > 0 {
			if err := sc.Load(ctx, s.rdb).Err(); err != nil {
				return nil, fmt.Errorf("load script: %w", err)
			}
			loaded = true
		}
		if len(moved) > 0 {
			if cc, ok := s.rdb.(*redis.ClusterClient); ok {
				cc.ReloadState(ctx)
			}
			if err := clock.Sleep(ctx, time.Duration(50<<attempt)*time.Millisecond); err != nil {
				return nil, err
			}
		}
		todo = append(noscript, moved...)
	}
	return out, nil
}

// reloadOnNodeError reloads a cluster client's slot map after an error
// that is not Redis's answer (a node that cannot be reached, a timeout):
// go-redis keeps a dead primary in its map until a MOVED or its periodic
// reload, so the step's retry would go to it again.
func (s *Redis) reloadOnNodeError(ctx context.Context, err error) {
	cc, ok := s.rdb.(*redis.ClusterClient)
	if !ok || err == nil || errors.Is(err, context.Canceled) {
		return
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !isRedirect(err) {
		return // Redis answered: the node is there
	}
	cc.ReloadState(ctx)
}

// clusterRetries bounds how often one call runs again after a cluster
// redirection or a cluster that is down or resharding (about 3 s in all
// with the backoff).
const clusterRetries = 6

// isRedirect reports whether err says the call did not run because the
// slot is elsewhere or the cluster is not ready for it.
func isRedirect(err error) bool {
	for _, p := range []string{"MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// runCalls runs the calls todo once, filling out and errs per call; it
// returns an error when none ran or WAIT fell short.
func (s *Redis) runCalls(ctx context.Context, sc *redis.Script, todo []int, keys func(int) []string, args func(int) []any, out []any, errs []error) error {
	run := func(ctx context.Context, c redis.Cmdable, node string, calls []int) error {
		want := s.waitFor(ctx, c, node)
		pipe := c.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for j, i := range calls {
			cmds[j] = sc.EvalSha(ctx, pipe, keys(i), args(i)...)
		}
		var wait *redis.Cmd
		if want > 0 {
			wait = pipe.Do(ctx, "WAIT", want, s.cfg.WaitTimeout.Milliseconds())
		}
		_, _ = pipe.Exec(ctx) // each command's error is looked at below
		for j, i := range calls {
			out[i], errs[i] = cmds[j].Val(), cmds[j].Err()
		}
		if wait != nil {
			n, err := wait.Int64()
			if err != nil {
				return fmt.Errorf("WAIT: %w", err)
			}
			if int(n) < want {
				s.forgetReplicas(node)
				return fmt.Errorf("WAIT: %d of %d replicas acknowledged the writes within %v", n, want, s.cfg.WaitTimeout)
			}
		}
		return nil
	}
	cc, cluster := s.rdb.(*redis.ClusterClient)
	if !cluster || s.cfg.WaitReplicas == 0 {
		return run(ctx, s.rdb, "", todo)
	}
	// One pipeline per primary, each ending with its WAIT.
	byNode := map[*redis.Client][]int{}
	for _, i := range todo {
		node, err := cc.MasterForKey(ctx, keys(i)[0])
		if err != nil {
			return fmt.Errorf("primary of %s: %w", keys(i)[0], err)
		}
		byNode[node] = append(byNode[node], i)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for node, calls := range byNode {
		wg.Go(func() {
			if err := run(ctx, node, node.Options().Addr, calls); err != nil {
				mu.Lock()
				firstErr = errors.Join(firstErr, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return firstErr
}

// waitFor returns how many replicas the writes sent on c (the primary
// node, "" on a single server) must reach: Config.WaitReplicas, or in
// auto mode 1 when that primary has a replica connected, else 0 (a
// primary left alone after a failover keeps working), from INFO
// replication read at most every replicaCheckEvery per primary.
func (s *Redis) waitFor(ctx context.Context, c redis.Cmdable, node string) int {
	if s.cfg.WaitReplicas >= 0 {
		return s.cfg.WaitReplicas
	}
	s.replicasMu.Lock()
	e, ok := s.replicas[node]
	s.replicasMu.Unlock()
	if ok && time.Since(e.at) < replicaCheckEvery {
		return min(e.n, 1)
	}
	n, err := connectedReplicas(ctx, c)
	if err != nil {
		n = 1 // unknown: wait, and let a shortfall fail the step
	}
	s.replicasMu.Lock()
	if s.replicas == nil {
		s.replicas = map[string]replicaCount{}
	}
	s.replicas[node] = replicaCount{n: n, at: time.Now()}
	s.replicasMu.Unlock()
	return min(n, 1)
}

// forgetReplicas drops a primary's cached replica count after a WAIT
// shortfall, so the next step reads it again.
func (s *Redis) forgetReplicas(node string) {
	s.replicasMu.Lock()
	delete(s.replicas, node)
	s.replicasMu.Unlock()
}

// replicaCheckEvery is how long auto mode trusts a primary's replica
// count.
const replicaCheckEvery = 5 * time.Second

type replicaCount struct {
	n  int
	at time.Time
}

func connectedReplicas(ctx context.Context, c redis.Cmdable) (int, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			_, _ = fmt.Sscan(v, &n) // a field that does not parse counts as no replica
		}
	}
	return n, nil
}

// ResolveWaitReplicas returns how many replicas the writes wait for now:
// Config.WaitReplicas, or in auto mode (negative,
// JOBALERT_REDIS_WAIT_REPLICAS=-1) 1 when every primary has a replica
// connected (INFO replication, connected_slaves), else 0. Auto mode keeps
// deciding per primary as replicas come and go.
func (s *Redis) ResolveWaitReplicas(ctx context.Context) (int, error) {
	if s.cfg.WaitReplicas >= 0 {
		return s.cfg.WaitReplicas, nil
	}
	least := -1
	check := func(ctx context.Context, c redis.Cmdable) error {
		n, err := connectedReplicas(ctx, c)
		if err != nil {
			return err
		}
		if least < 0 || n < least {
			least = n
		}
		return nil
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			mu.Lock()
			defer mu.Unlock()
			return check(ctx, c)
		})
	} else {
		err = check(ctx, s.rdb)
	}
	if err != nil {
		return 0, wrap("replicas of the primary", err)
	}
	return min(least, 1), nil
}
