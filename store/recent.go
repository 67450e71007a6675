package store

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/matcher"
)

// ScanRecentJobs calls fn with every open job record first seen at or
// after since, in no order, with the time it was first seen: the live
// preview's start (package preview). It is the one reader of the job
// records' key layout outside record.go, so that a change of the layout
// changes only this function. It SCANs (every master, on a cluster), so it
// never blocks Redis; a record written during the scan may be missed or
// seen, which the preview's stream follower makes up for. A record that does
// not decode is skipped. fn's error stops the scan and is returned.
func (s *Redis) ScanRecentJobs(ctx context.Context, since time.Time, fn func(j *matcher.Job, first time.Time) error) error {
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, s.k.job("*"), 1000).Result()
			if err != nil {
				return wrap("scan jobs", err)
			}
			if err := s.readRecent(ctx, c, keys, since, fn); err != nil {
				return err
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, s.rdb)
}

func (s *Redis) readRecent(ctx context.Context, c redis.UniversalClient, keys []string, since time.Time, fn func(*matcher.Job, time.Time) error) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := c.Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.HMGet(ctx, k, "data", "closed", "first")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return wrap("read recent jobs", err)
	}
	for _, cmd := range cmds {
		v := cmd.Val()
		data, _ := v[0].(string)
		if data == "" || v[1] != nil {
			continue
		}
		f, _ := v[2].(string)
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil || time.UnixMilli(n).Before(since) {
			continue
		}
		var j matcher.Job
		if json.Unmarshal([]byte(data), &j) != nil {
			continue
		}
		if err := fn(&j, time.UnixMilli(n).UTC()); err != nil {
			return err
		}
	}
	return nil
}
