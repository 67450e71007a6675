package connect

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster client settings. go-redis's ClusterClient, left to its defaults
// (v9.23.0, osscluster.go), keeps a dead primary in its slot map: its
// clusterStateHolder reloads the map only on a MOVED or ASK reply, on
// READONLY, or lazily once the map is older than ClusterStateReloadInterval
// (60 s). A connection error to a dead primary triggers none of these: the
// command is retried on the same node (its MaxRetries), then MarkAsFailing
// is set, but slotMasterNode still returns the slot's first node, failing
// or not, so every command to that primary's slots fails until the
// periodic reload, up to a minute after the replica took over.
//
// So every node client gets a hook (OnNewNode) that asks for a reload
// (ReloadState: go-redis's LazyReload, one at a time, 200 ms apart, a
// request during one queues one more) whenever a command or pipeline on
// that node fails with a connection error, a timeout, or CLUSTERDOWN,
// TRYAGAIN or MASTERDOWN. While a dead primary is still in the map, each
// failing command asks again, so the map follows the promotion within a
// reload of it; ClusterStateReloadInterval is shortened to 10 s for changes
// no command trips over (a replica added). The retries are bounded:
// clusterMaxRedirects redirects or retries per command across nodes, each
// node retrying once, with a backoff from 50 ms to 1 s and one dial per
// try, so a command fails after a few seconds and its caller (a nak, the
// next poll) tries again.
const (
	clusterMaxRedirects  = 6
	clusterReload        = 10 * time.Second
	clusterNodeRetries   = 1
	clusterMinRetryDelay = 50 * time.Millisecond
	clusterMaxRetryDelay = time.Second
	// clusterDialRetries: one dial per try (go-redis's default is 5, 100 ms
	// apart): a refused connection is final, and the retries above try
	// again once the slot map may have changed.
	clusterDialRetries = 1
)

// clusterClient returns a Redis Cluster client of seeds, taking from opt
// (parsed from JOBALERT_REDIS_URL) only the login, the protocol and TLS.
func clusterClient(seeds []string, opt *redis.Options) *redis.ClusterClient {
	if opt.TLSConfig != nil {
		// The URL's host is not used: each node is verified under its
		// own address.
		opt.TLSConfig.ServerName = ""
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:    seeds,
		Username: opt.Username, Password: opt.Password, Protocol: opt.Protocol,
		ClientName: opt.ClientName, TLSConfig: opt.TLSConfig,

		MaxRedirects: clusterMaxRedirects, ClusterStateReloadInterval: clusterReload,
		MaxRetries: clusterNodeRetries, MinRetryBackoff: clusterMinRetryDelay, MaxRetryBackoff: clusterMaxRetryDelay,
		DialerRetries: clusterDialRetries,
		DialTimeout:   opt.DialTimeout, ReadTimeout: opt.ReadTimeout, WriteTimeout: opt.WriteTimeout,
		ContextTimeoutEnabled: opt.ContextTimeoutEnabled,
		PoolFIFO:              opt.PoolFIFO, PoolSize: opt.PoolSize, PoolTimeout: opt.PoolTimeout,
		MinIdleConns: opt.MinIdleConns, MaxIdleConns: opt.MaxIdleConns, MaxActiveConns: opt.MaxActiveConns,
		ConnMaxIdleTime: opt.ConnMaxIdleTime, ConnMaxLifetime: opt.ConnMaxLifetime,
	})
	c.OnNewNode(func(node *redis.Client) {
		node.AddHook(reloadHook{reload: func() { c.ReloadState(context.Background()) }})
	})
	return c
}

// reloadHook asks for a reload of the cluster's slot map when a command or
// pipeline on one node fails in a way that may mean the node is gone or no
// longer serves its slots.
type reloadHook struct{ reload func() }

func (h reloadHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			h.reload()
		}
		return conn, err
	}
}

func (h reloadHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if staleMap(ctx, err) {
			h.reload()
		}
		return err
	}
}

func (h reloadHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		stale := staleMap(ctx, err)
		for _, c := range cmds {
			stale = stale || staleMap(ctx, c.Err())
		}
		if stale {
			h.reload()
		}
		return err
	}
}

// staleMap reports whether err, from one node, suggests the slot map may
// be out of date: the node cannot be reached or answered in time, or the
// cluster says it is (re)configuring. Replies of the command itself
// (redis.Nil, a script's error, WRONGTYPE) and the caller giving up
// (context canceled) do not.
func staleMap(ctx context.Context, err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, redis.ErrClosed) || ctx.Err() == context.Canceled {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		msg := reply.Error()
		return strings.HasPrefix(msg, "CLUSTERDOWN") || strings.HasPrefix(msg, "TRYAGAIN") || strings.HasPrefix(msg, "MASTERDOWN")
	}
	return true // a network error, EOF, a timeout, a closed pool
}
