package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/internal/connect"
	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/webhook"
)

// runMigrate moves a keyspace of the unsharded layout to the sharded one
// (store.Migrate), in place, with a progress bar on stderr and the counts
// at the end on stdout. It is idempotent and resumable: run it again
// after a failure or a kill.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", "migrate\n\nMoves the Redis keyspace of JOBALERT_REDIS_PREFIX from the unsharded layout to\nJOBALERT_REDIS_SHARDS shards (docs/scaling.md). Stop every jobalert process first;\nit is safe to stop and run again.", stdout, stderr)
	if err := parseFlags(fs, args, 0, stdout); err != nil {
		return err
	}
	cfg, err := config.Load(getenv, false)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	rdb, err := connect.Redis(cfg)
	if err != nil {
		return redact.Wrap(err)
	}
	defer rdb.Close()
	pctx, cancel := context.WithTimeout(ctx, defaultStartupTimeout)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("%s: %w", connect.RedisTarget(cfg), redact.Wrap(err))
	}
	// The webhook queue's keys first: the layout is marked migrated only
	// by the store's step, so a failure here leaves serve refusing.
	hooks, err := webhook.MigrateKeys(ctx, rdb, cfg.KeyPrefix, nil)
	if err != nil {
		return fmt.Errorf("migrate webhook keys: %w", redact.Wrap(err))
	}
	st := store.New(rdb, store.Config{Prefix: cfg.KeyPrefix, JobTTL: cfg.JobTTL, Shards: cfg.RedisShards})
	var bar *progressbar.ProgressBar
	c, err := st.Migrate(ctx, func(total, done int64) {
		if bar == nil {
			bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription("migrating"),
				progressbar.OptionShowCount(), progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
		}
		_ = bar.Set64(done) // only the bar's own output can fail
	})
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "migrated %d keys to %d shards under prefix %q; the sharded layout holds: %d subscriptions, %d pending items, %d due entries, %d digests, %d jobs; %d webhook queue keys moved under {wh}\n",
		c.ToMove, cfg.RedisShards, cfg.KeyPrefix, c.Subscriptions, c.PendingItems, c.Due, c.Digests, c.Jobs, hooks)
	return nil
}
