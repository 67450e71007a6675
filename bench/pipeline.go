package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/workload"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// Pipeline implements `jobalert bench pipeline --subscriptions N --events M
// [--nats-url URL] [--redis-url URL] [--batch B] [--profile popular|sparse]
// [--fsync always|everysec]` (issue 7). Unless URLs are given it starts an
// embedded JetStream server on a temporary directory and a redis-server
// child with AOF on. It imports N active instant subscriptions (the
// generator's filters) into Redis, loads them into a matcher.Index with
// store.LoadFilters as the service does, publishes M events as a backlog,
// and then measures, one after the other:
//
//   - jetstream: a durable consumer that only acks, same batch size;
//   - full path: the real consumer.Consumer (decode, match, record in
//     Redis, ack) until its durable consumer has nothing pending;
//   - redis: the same record calls (same batches, same arguments, matches
//     computed beforehand) against a fresh key prefix, no NATS.
//
// It prints the rates and their ratios, the process's memory, Redis memory
// per subscription before and after the events, and a RESULT line.
func Pipeline(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench pipeline", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var o pipelineOpts
	fs.IntVar(&o.subs, "subscriptions", 100_000, "active instant subscriptions to import")
	fs.IntVar(&o.events, "events", 1_000, "job events to publish as a backlog")
	fs.StringVar(&o.natsURL, "nats-url", "", "NATS server to use (default: an embedded JetStream server)")
	fs.StringVar(&o.redisURL, "redis-url", "", "Redis to use (default: a redis-server child with AOF)")
	fs.StringVar(&o.redisCluster, "redis-cluster", "", "also record on this Redis Cluster (seed host:port, comma-separated) and compare its rate with the single server's")
	fs.IntVar(&o.batch, "batch", 256, "consumer batch size (JOBALERT_CONSUMER_BATCH)")
	fs.StringVar(&o.profile, "profile", "popular", "workload: popular or sparse (see bench gen)")
	fs.Uint64Var(&o.seed, "seed", 1, "random seed of the workload")
	fs.StringVar(&o.fsync, "fsync", "always", "appendfsync of the spawned redis-server: always or everysec")
	fs.StringVar(&o.stream, "stream", consumer.DefaultStream, "events stream; with --nats-url it must be empty or absent")
	fs.IntVar(&o.pendingLimit, "pending-limit", 100, "pending items kept per subscription (4 x the digest cap)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the full-path phase to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.subs <= 0 || o.events <= 0 || o.batch <= 0 {
		return errors.New("bench pipeline: --subscriptions, --events and --batch must be > 0")
	}
	if o.fsync != "always" && o.fsync != "everysec" {
		return fmt.Errorf("bench pipeline: --fsync %q: want always or everysec", o.fsync)
	}
	gen, err := workload.NewGenerator(o.profile, o.seed)
	if err != nil {
		return err
	}
	r := &pipelineRun{o: o, gen: gen, out: stdout,
		log: slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	defer r.close()
	return r.run(ctx)
}

type pipelineOpts struct {
	subs, events, batch, pendingLimit int
	natsURL, redisURL, redisCluster   string
	profile, fsync, stream            string
	seed                              uint64
	cpuProfile                        string
}

// pipelineRun is one run of the pipeline benchmark and what it started.
type pipelineRun struct {
	o   pipelineOpts
	gen *workload.Generator
	out io.Writer
	log *slog.Logger

	dir     string
	ns      *server.Server
	redis   *exec.Cmd
	nc      *nats.Conn
	js      jetstream.JetStream
	rdb     *redis.Client
	redisV  string
	cleanup []func()
}

func (r *pipelineRun) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

func (r *pipelineRun) close() {
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		r.cleanup[i]()
	}
}

func (r *pipelineRun) run(ctx context.Context) error {
	if err := r.start(ctx); err != nil {
		return err
	}
	o := r.o
	runID := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	prefixFull, prefixRaw := "bench:"+runID+":full:", "bench:"+runID+":raw:"
	cfg := store.Config{InstantWindow: time.Minute, PendingLimit: o.pendingLimit}
	cfg.Prefix = prefixFull
	stFull := store.New(r.rdb, cfg)
	cfg.Prefix = prefixRaw
	stRaw := store.New(r.rdb, cfg)

	r.printf("machine: %d CPUs (%s), %s, GOMAXPROCS %d, redis-server %s\n",
		runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOMAXPROCS(0), r.redisV)
	r.printf("workload: %d subscriptions, %d events, profile %s, seed %d, batch %d, pending limit %d, appendfsync %s\n",
		o.subs, o.events, o.profile, o.seed, o.batch, o.pendingLimit, r.fsyncMode(ctx))

	// Subscriptions: Redis first, then the index from Redis, as a replica
	// starts.
	memBefore, err := r.usedMemory(ctx)
	if err != nil {
		return err
	}
	t := time.Now()
	if err := r.importSubs(ctx, stFull); err != nil {
		return err
	}
	importTime := time.Since(t)
	memLoaded, err := r.usedMemory(ctx)
	if err != nil {
		return err
	}
	heapBase := liveHeap()
	ix := matcher.NewIndex()
	t = time.Now()
	n, err := stFull.LoadFilters(ctx, ix, r.log)
	if err != nil {
		return err
	}
	if n != o.subs {
		return fmt.Errorf("bench pipeline: LoadFilters loaded %d filters, want %d", n, o.subs)
	}
	loadTime := time.Since(t)
	indexHeap := liveHeap() - heapBase
	r.printf("import: %d subscriptions in %s (%.0f/s, pipelined, store.ImportSubscriptions); redis used_memory %s -> %s (%.0f B/subscription)\n",
		o.subs, importTime.Round(time.Millisecond), float64(o.subs)/importTime.Seconds(),
		mb(memBefore), mb(memLoaded), float64(memLoaded-memBefore)/float64(o.subs))
	r.printf("index: store.LoadFilters loaded %d filters in %s; index heap %s (%.0f B/filter)\n",
		n, loadTime.Round(time.Millisecond), mb(indexHeap), float64(indexHeap)/float64(n))

	// The backlog.
	t = time.Now()
	bodies, seqs, err := r.publish(ctx)
	if err != nil {
		return err
	}
	r.printf("publish: %d events in %s (%.0f/s) to stream %s\n", len(bodies), time.Since(t).Round(time.Millisecond),
		float64(len(bodies))/time.Since(t).Seconds(), o.stream)

	// b. raw JetStream.
	js, err := r.rawJetStream(ctx, seqs[0])
	if err != nil {
		return err
	}
	r.printf("jetstream (fetch %d, ack each, no work): %d events in %s: %.0f events/s\n",
		o.batch, o.events, js.Round(time.Millisecond), float64(o.events)/js.Seconds())

	// a. the full path.
	full, err := r.fullPath(ctx, stFull, ix)
	if err != nil {
		return err
	}
	r.printf("full path (consumer.Consumer: fetch, decode, match, record, ack): %d events, %d matched pairs (%d recorded) in %s: %.0f events/s, %.0f pairs/s\n",
		full.events, full.pairs, full.recorded, full.elapsed.Round(time.Millisecond),
		float64(full.events)/full.elapsed.Seconds(), float64(full.pairs)/full.elapsed.Seconds())
	r.printf("  time in Record, summed over the %d batches in flight: %s (%.0f%% of the phase); redis main thread busy %.0f%% of the phase\n",
		inFlight, full.recordTime.Round(time.Millisecond), 100*full.recordTime.Seconds()/full.elapsed.Seconds(), 100*full.redisBusy)
	r.printCommandStats(full.cmdstats)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, hwm := procMem()
	r.printf("  process memory: heap in use %s (live after GC %s), RSS %s, peak RSS %s\n",
		mb(int64(ms.HeapInuse)), mb(liveHeap()), mb(rss), mb(hwm))

	// Redis memory after the events: everything per subscription, with
	// the job records (per job, expiring) counted apart.
	memAfter, err := r.usedMemory(ctx)
	if err != nil {
		return err
	}
	jobBytes, err := r.jobRecordBytes(ctx, prefixFull, o.events)
	if err != nil {
		return err
	}
	pend, err := r.pendingStats(ctx, prefixFull)
	if err != nil {
		return err
	}
	perSubLoaded := float64(memLoaded-memBefore) / float64(o.subs)
	perSubAfter := float64(memAfter-memBefore-jobBytes) / float64(o.subs)
	if full.halfMemory > 0 {
		jobsHalf := jobBytes / 2
		r.printf("redis memory half-way (%d events recorded): used_memory %s, %.0f B/subscription (job records excluded)\n",
			o.events/2, mb(full.halfMemory), float64(full.halfMemory-memBefore-jobsHalf)/float64(o.subs))
	}
	r.printf("redis memory: used_memory after the events %s; job records ~%s (%.0f B/job, expire with JOBALERT_JOB_TTL); per subscription: %.0f B after import, %.0f B after %d events (job records excluded)\n",
		mb(memAfter), mb(jobBytes), float64(jobBytes)/float64(o.events), perSubLoaded, perSubAfter, o.events)
	r.printf("  pending items per subscription (sample of %d): mean %.1f, p50 %d, p99 %d, max %d, at the limit (%d) %.1f%%; a full pend: list is %d B\n",
		pend.sampled, pend.mean, pend.p50, pend.p99, pend.max, o.pendingLimit, 100*pend.atLimit, pend.fullBytes)

	// c. raw Redis: same record calls, fresh prefix, no matching, no NATS.
	if err := r.importSubs(ctx, stRaw); err != nil {
		return err
	}
	raw, err := r.rawRedis(ctx, stRaw, ix, bodies, seqs)
	if err != nil {
		return err
	}
	r.printf("redis (the same record calls, batches of %d, matches precomputed, fresh prefix): %d events, %d pairs in %s: %.0f events/s, %.0f pairs/s\n",
		o.batch, raw.events, raw.pairs, raw.elapsed.Round(time.Millisecond),
		float64(raw.events)/raw.elapsed.Seconds(), float64(raw.pairs)/raw.elapsed.Seconds())
	r.printf("  redis main thread busy %.0f%% of the phase (%.1f s of CPU, %.2f us/pair)\n", 100*raw.redisBusy,
		raw.redisBusy*raw.elapsed.Seconds(), 1e6*raw.redisBusy*raw.elapsed.Seconds()/float64(raw.pairs))
	r.printCommandStats(raw.cmdstats)

	if o.redisCluster != "" {
		if err := r.clusterPhase(ctx, ix, bodies, seqs, runID, float64(raw.pairs)/raw.elapsed.Seconds()); err != nil {
			return err
		}
	}

	fullEv := float64(full.events) / full.elapsed.Seconds()
	fullPairs := float64(full.pairs) / full.elapsed.Seconds()
	jsEv := float64(o.events) / js.Seconds()
	rawEv := float64(raw.events) / raw.elapsed.Seconds()
	rawPairs := float64(raw.pairs) / raw.elapsed.Seconds()
	slower, slowerName := jsEv, "jetstream"
	if rawEv < jsEv {
		slower, slowerName = rawEv, "redis"
	}
	ratio := fullEv / slower
	r.printf("ratios: full path / jetstream %.3f, full path / redis %.3f (pairs/s %.3f); full path / slower raw component (%s) %.3f\n",
		fullEv/jsEv, fullEv/rawEv, fullPairs/rawPairs, slowerName, ratio)
	r.printf("goals: >= 250000 pairs/s end to end: %s (%.0f); >= 50%% of the slower raw component: %s (%.0f%%)\n",
		verdict(fullPairs >= 250_000), fullPairs, verdict(ratio >= 0.5), 100*ratio)
	r.printf("RESULT subscriptions=%d events=%d batch=%d profile=%s fsync=%s pairs=%d avg_matches=%.0f full_events_per_s=%.0f full_pairs_per_s=%.0f jetstream_events_per_s=%.0f redis_events_per_s=%.0f redis_pairs_per_s=%.0f ratio_vs_slower=%.3f slower=%s heap_inuse_mb=%.0f rss_mb=%.0f peak_rss_mb=%.0f index_bytes_per_filter=%.0f redis_bytes_per_sub_loaded=%.0f redis_bytes_per_sub_after=%.0f redis_bytes_per_job=%.0f pend_mean=%.1f pend_at_limit=%.3f\n",
		o.subs, o.events, o.batch, o.profile, r.fsyncMode(ctx), full.pairs, float64(full.pairs)/float64(full.events),
		fullEv, fullPairs, jsEv, rawEv, rawPairs, ratio, slowerName,
		float64(ms.HeapInuse)/1e6, float64(rss)/1e6, float64(hwm)/1e6, float64(indexHeap)/float64(n),
		perSubLoaded, perSubAfter, float64(jobBytes)/float64(o.events), pend.mean, pend.atLimit)
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// start connects to NATS and Redis, starting them when no URL is given.
func (r *pipelineRun) start(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "jobalert-bench-pipeline-")
	if err != nil {
		return fmt.Errorf("bench pipeline: %w", err)
	}
	r.dir = dir
	r.cleanup = append(r.cleanup, func() { _ = os.RemoveAll(dir) })

	natsURL := r.o.natsURL
	if natsURL == "" {
		ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: filepath.Join(dir, "nats"), NoSigs: true, NoLog: true})
		if err != nil {
			return fmt.Errorf("bench pipeline: embedded NATS: %w", err)
		}
		ns.Start()
		r.ns = ns
		r.cleanup = append(r.cleanup, ns.Shutdown)
		if !ns.ReadyForConnections(10 * time.Second) {
			return errors.New("bench pipeline: embedded NATS did not start in 10s")
		}
		natsURL = ns.ClientURL()
	}
	nc, err := nats.Connect(natsURL, nats.Name("jobalert-bench-pipeline"))
	if err != nil {
		return fmt.Errorf("bench pipeline: connect to NATS at %s: %w", natsURL, err)
	}
	r.nc = nc
	r.cleanup = append(r.cleanup, nc.Close)
	if r.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("bench pipeline: jetstream: %w", err)
	}

	redisURL := r.o.redisURL
	if redisURL == "" {
		if redisURL, err = r.startRedis(); err != nil {
			return err
		}
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("bench pipeline: --redis-url: %w", err)
	}
	// The client is configured as the service configures its own
	// (cmd/jobalert/app.go): redis.ParseURL's defaults.
	r.rdb = redis.NewClient(opt)
	r.cleanup = append(r.cleanup, func() { _ = r.rdb.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.rdb.Ping(ctx).Err()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("bench pipeline: redis at %s: %w", redisURL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	info, err := r.info(ctx, "server")
	if err != nil {
		return err
	}
	r.redisV = info["redis_version"]
	return nil
}

// startRedis starts a redis-server child as production runs it: AOF on,
// appendfsync as --fsync says, no RDB snapshots.
func (r *pipelineRun) startRedis() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("bench pipeline: redis-server not found: install it (apt-get install redis-server) or pass --redis-url")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench pipeline: free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	rdir := filepath.Join(r.dir, "redis")
	if err := os.MkdirAll(rdir, 0o755); err != nil {
		return "", fmt.Errorf("bench pipeline: %w", err)
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", rdir,
		"--appendonly", "yes", "--appendfsync", r.o.fsync, "--save", "",
		"--logfile", filepath.Join(rdir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("bench pipeline: start redis-server: %w", err)
	}
	r.redis = cmd
	r.cleanup = append(r.cleanup, func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port), nil
}

func (r *pipelineRun) fsyncMode(ctx context.Context) string {
	v, err := r.rdb.ConfigGet(ctx, "appendfsync").Result()
	if err != nil {
		return "unknown"
	}
	aof, _ := r.rdb.ConfigGet(ctx, "appendonly").Result()
	if aof["appendonly"] != "yes" {
		return "no-aof"
	}
	return v["appendfsync"]
}

// importSubs imports the generator's first N filters as active instant
// subscriptions, on two goroutines.
func (r *pipelineRun) importSubs(ctx context.Context, st *store.Redis) error {
	const chunk = 10_000
	now := time.Now()
	var next atomic.Int64
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			subs := make([]*store.Subscription, 0, chunk)
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= r.o.subs || ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				subs = subs[:0]
				for i := start; i < min(start+chunk, r.o.subs); i++ {
					f := r.gen.Filter(i)
					subs = append(subs, &store.Subscription{ID: f.ID, Email: "bench+" + f.ID + "@example.com",
						Filter: f.Filter, Frequency: "instant", Timezone: "UTC", SendHour: 8,
						Status: store.StatusActive, CreatedAt: now})
				}
				if err := st.ImportSubscriptions(ctx, subs, now); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// publish creates the streams and publishes the events as jobs.created
// with consumer.Publish, as `jobalert publish` does. It returns the bodies
// and their stream sequences.
func (r *pipelineRun) publish(ctx context.Context) ([][]byte, []uint64, error) {
	if s, err := r.js.Stream(ctx, r.o.stream); err == nil {
		if n := s.CachedInfo().State.Msgs; n > 0 {
			return nil, nil, fmt.Errorf("bench pipeline: stream %s already holds %d messages; use an empty server or another --stream", r.o.stream, n)
		}
	}
	if err := consumer.EnsureStreams(ctx, r.js, consumer.StreamConfig{Stream: r.o.stream, Consumer: "bench-full"}); err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	bodies := make([][]byte, r.o.events)
	for i := range r.o.events {
		b, err := json.Marshal(r.gen.Job(i))
		if err != nil {
			return nil, nil, err
		}
		bodies[i] = b
		buf.Write(b)
		buf.WriteByte('\n')
	}
	s, err := r.js.Stream(ctx, r.o.stream)
	if err != nil {
		return nil, nil, err
	}
	first := s.CachedInfo().State.LastSeq + 1
	n, err := consumer.Publish(ctx, r.js, &buf, consumer.SubjectCreated, nil)
	if err != nil {
		return nil, nil, err
	}
	if n != r.o.events {
		return nil, nil, fmt.Errorf("bench pipeline: published %d events, want %d (a duplicate Nats-Msg-Id?)", n, r.o.events)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, nil, err
	}
	if got := info.State.LastSeq - first + 1; got != uint64(r.o.events) {
		return nil, nil, fmt.Errorf("bench pipeline: the stream took %d events, want %d", got, r.o.events)
	}
	seqs := make([]uint64, r.o.events)
	for i := range seqs {
		seqs[i] = first + uint64(i)
	}
	return bodies, seqs, nil
}

// rawJetStream consumes the backlog on its own durable consumer, acking
// each message and doing nothing else, with the consumer's batch size and
// fetch wait, until all are delivered and acked.
func (r *pipelineRun) rawJetStream(ctx context.Context, first uint64) (time.Duration, error) {
	cons, err := r.js.CreateOrUpdateConsumer(ctx, r.o.stream, jetstream.ConsumerConfig{
		Durable: "bench-raw", DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: first,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: consumer.DefaultAckWait, MaxDeliver: -1,
		MaxAckPending: consumer.DefaultMaxAckPending, FilterSubject: "jobs.>",
	})
	if err != nil {
		return 0, fmt.Errorf("bench pipeline: raw consumer: %w", err)
	}
	start := time.Now()
	got := 0
	for got < r.o.events {
		batch, err := cons.Fetch(r.o.batch, jetstream.FetchMaxWait(100*time.Millisecond))
		if err != nil {
			return 0, fmt.Errorf("bench pipeline: raw fetch: %w", err)
		}
		for m := range batch.Messages() {
			if err := m.Ack(); err != nil {
				return 0, fmt.Errorf("bench pipeline: raw ack: %w", err)
			}
			got++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return 0, fmt.Errorf("bench pipeline: raw fetch: %w", err)
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
	if err := r.waitDrained(ctx, cons); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// waitDrained polls the durable consumer until nothing is pending or
// waiting for its ack.
func (r *pipelineRun) waitDrained(ctx context.Context, cons jetstream.Consumer) error {
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("bench pipeline: consumer info: %w", err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type phase struct {
	events, pairs, recorded int64
	elapsed, recordTime     time.Duration
	halfMemory              int64   // Redis used_memory when half the events were recorded
	redisBusy               float64 // fraction of the phase the Redis main thread was on a CPU
	cmdstats                map[string]cmdStat
}

// inFlight is how many batches both the full path and raw Redis record at
// once: the consumer's default (JOBALERT_CONSUMER_IN_FLIGHT).
const inFlight = 2

// countingRecorder is the store as the consumer's Recorder, counting what
// it records. RecordResults with the wall clock is what Record does.
type countingRecorder struct {
	st                      *store.Redis
	events, pairs, recorded atomic.Int64
	nanos                   atomic.Int64
}

func (c *countingRecorder) Record(ctx context.Context, batch []jobevent.Matched) error {
	t := time.Now()
	res, err := c.st.RecordResults(ctx, batch, time.Now())
	c.nanos.Add(int64(time.Since(t)))
	if err != nil {
		return err
	}
	var pairs, rec int64
	for i, m := range batch {
		pairs += int64(len(m.SubscriptionIDs))
		rec += int64(res[i].Recorded)
	}
	c.events.Add(int64(len(batch)))
	c.pairs.Add(pairs)
	c.recorded.Add(rec)
	return nil
}

// fullPath runs the real consumer on the backlog until its durable
// consumer has nothing pending.
func (r *pipelineRun) fullPath(ctx context.Context, st *store.Redis, ix *matcher.Index) (phase, error) {
	// EnsureStreams made the durable consumer "bench-full" as the service
	// makes its own.
	cons, err := r.js.Consumer(ctx, r.o.stream, "bench-full")
	if err != nil {
		return phase{}, err
	}
	rec := &countingRecorder{st: st}
	c := consumer.New(r.js, consumer.Config{Stream: r.o.stream, Consumer: "bench-full", Batch: r.o.batch, InFlight: inFlight}, ix, rec, r.log, nil)

	if r.o.cpuProfile != "" {
		f, err := os.Create(r.o.cpuProfile)
		if err != nil {
			return phase{}, fmt.Errorf("bench pipeline: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return phase{}, fmt.Errorf("bench pipeline: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	before, err := r.startPhase(ctx)
	if err != nil {
		return phase{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Run(runCtx) }()
	// Redis memory half-way through, to compare with the end.
	half := make(chan int64, 1)
	go func() {
		defer close(half)
		for rec.events.Load() < int64(r.o.events/2) {
			select {
			case <-runCtx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		if info, err := r.info(runCtx, "memory"); err == nil {
			n, _ := strconv.ParseInt(info["used_memory"], 10, 64)
			half <- n
		}
	}()
	werr := r.waitDrained(ctx, cons)
	elapsed := time.Since(start)
	stop()
	halfMem := <-half
	if err := <-done; err != nil {
		return phase{}, fmt.Errorf("bench pipeline: consumer: %w", err)
	}
	if werr != nil {
		return phase{}, werr
	}
	p := phase{events: rec.events.Load(), pairs: rec.pairs.Load(), recorded: rec.recorded.Load(),
		elapsed: elapsed, recordTime: time.Duration(rec.nanos.Load()), halfMemory: halfMem}
	if err := r.endPhase(ctx, before, &p); err != nil {
		return phase{}, err
	}
	if p.events != int64(r.o.events) {
		return p, fmt.Errorf("bench pipeline: the consumer recorded %d events, want %d (redeliveries or poison: see the log above)", p.events, r.o.events)
	}
	return p, nil
}

// rawRedis sends the record calls of the full path again, batch for
// batch, against st (a fresh prefix): the matches are computed before
// each batch's clock starts.
func (r *pipelineRun) rawRedis(ctx context.Context, st *store.Redis, ix *matcher.Index, bodies [][]byte, seqs []uint64) (phase, error) {
	all, err := matchAll(ix, bodies, seqs)
	if err != nil {
		return phase{}, err
	}
	before, err := r.startPhase(ctx)
	if err != nil {
		return phase{}, err
	}
	p, err := r.recordAll(ctx, st, ix, all)
	if err != nil {
		return phase{}, err
	}
	if err := r.endPhase(ctx, before, &p); err != nil {
		return phase{}, err
	}
	return p, nil
}

// matchedEvent is an event with the index slots it matched.
type matchedEvent struct {
	ev    jobevent.Event
	slots []uint32
}

// matchAll decodes and matches the events beforehand.
func matchAll(ix *matcher.Index, bodies [][]byte, seqs []uint64) ([]matchedEvent, error) {
	all := make([]matchedEvent, len(bodies))
	var scratch []uint32
	for i, b := range bodies {
		ev, err := consumer.DecodeEvent(consumer.SubjectCreated, b)
		if err != nil {
			return nil, fmt.Errorf("bench pipeline: event %d: %w", i, err)
		}
		ev.StreamSeq = seqs[i]
		scratch = ix.Match(&ev.Job, scratch[:0])
		all[i] = matchedEvent{ev: ev, slots: append([]uint32(nil), scratch...)}
	}
	return all, nil
}

// recordAll records the matched events through st, in batches, inFlight
// at once, as the consumer does, and times it.
func (r *pipelineRun) recordAll(ctx context.Context, st *store.Redis, ix *matcher.Index, all []matchedEvent) (phase, error) {
	// As the consumer does: a goroutine makes each batch's id and key lists
	// (what ix.MatchKeyed returns, from the slots Match found) ahead of the
	// recorders, and inFlight batches are recorded at once.
	batches := make(chan []jobevent.Matched, inFlight)
	go func() {
		defer close(batches)
		for lo := 0; lo < len(all); lo += r.o.batch {
			batch := make([]jobevent.Matched, 0, r.o.batch)
			for _, pe := range all[lo:min(lo+r.o.batch, len(all))] {
				ids, keys := ix.KeyedIDs(slices.Clone(pe.slots))
				batch = append(batch, jobevent.Matched{Event: pe.ev, SubscriptionIDs: ids, Keys: keys})
			}
			select {
			case batches <- batch:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		p        phase
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range inFlight {
		wg.Go(func() {
			for batch := range batches {
				res, err := st.RecordResults(ctx, batch, time.Now())
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				for i, x := range res {
					p.recorded += int64(x.Recorded)
					p.pairs += int64(len(batch[i].SubscriptionIDs))
				}
				p.events += int64(len(res))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return phase{}, firstErr
	}
	p.elapsed = time.Since(start)
	p.recordTime = p.elapsed
	return p, nil
}

type phaseStart struct {
	cpu float64
	at  time.Time
}

func (r *pipelineRun) startPhase(ctx context.Context) (phaseStart, error) {
	runtime.GC()
	if err := r.rdb.ConfigResetStat(ctx).Err(); err != nil {
		return phaseStart{}, fmt.Errorf("bench pipeline: CONFIG RESETSTAT: %w", err)
	}
	cpu, err := r.redisMainCPU(ctx)
	return phaseStart{cpu: cpu, at: time.Now()}, err
}

func (r *pipelineRun) endPhase(ctx context.Context, s phaseStart, p *phase) error {
	wall := time.Since(s.at)
	cpu, err := r.redisMainCPU(ctx)
	if err != nil {
		return err
	}
	p.redisBusy = (cpu - s.cpu) / wall.Seconds()
	p.cmdstats, err = r.commandStats(ctx)
	return err
}

// redisMainCPU is the CPU time of Redis's main thread, in seconds.
func (r *pipelineRun) redisMainCPU(ctx context.Context) (float64, error) {
	info, err := r.info(ctx, "cpu")
	if err != nil {
		return 0, err
	}
	u, _ := strconv.ParseFloat(info["used_cpu_user_main_thread"], 64)
	s, _ := strconv.ParseFloat(info["used_cpu_sys_main_thread"], 64)
	return u + s, nil
}

type cmdStat struct {
	calls       int64
	usec        int64
	usecPerCall float64
}

func (r *pipelineRun) commandStats(ctx context.Context) (map[string]cmdStat, error) {
	info, err := r.info(ctx, "commandstats")
	if err != nil {
		return nil, err
	}
	out := map[string]cmdStat{}
	for k, v := range info {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		var c cmdStat
		for _, kv := range strings.Split(v, ",") {
			key, val, _ := strings.Cut(kv, "=")
			switch key {
			case "calls":
				c.calls, _ = strconv.ParseInt(val, 10, 64)
			case "usec":
				c.usec, _ = strconv.ParseInt(val, 10, 64)
			case "usec_per_call":
				c.usecPerCall, _ = strconv.ParseFloat(val, 64)
			}
		}
		out[name] = c
	}
	return out, nil
}

func (r *pipelineRun) printCommandStats(m map[string]cmdStat) {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]].usec > m[names[j]].usec })
	var parts []string
	for _, n := range names {
		c := m[n]
		if c.calls < 100 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d calls %.2f us/call", n, c.calls, c.usecPerCall))
	}
	r.printf("  redis commandstats: %s\n", strings.Join(parts, "; "))
}

func (r *pipelineRun) info(ctx context.Context, section string) (map[string]string, error) {
	s, err := r.rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, fmt.Errorf("bench pipeline: INFO %s: %w", section, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out, nil
}

// usedMemory is INFO memory's used_memory once Redis has settled (no
// client buffers in flight).
func (r *pipelineRun) usedMemory(ctx context.Context) (int64, error) {
	time.Sleep(200 * time.Millisecond)
	info, err := r.info(ctx, "memory")
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(info["used_memory"], 10, 64)
}

// jobRecordBytes estimates the memory of the job records (each job's
// record, from MEMORY USAGE of a sample) and of every shard's job maps
// (jid, jobs, jobexp: measured whole).
func (r *pipelineRun) jobRecordBytes(ctx context.Context, prefix string, n int) (int64, error) {
	step := max(1, n/200)
	var sum, k int64
	for seq := 1; seq <= n; seq += step {
		jb, err := r.rdb.MemoryUsage(ctx, store.JobKey(prefix, "j"+strconv.Itoa(seq-1))).Result()
		if err != nil {
			return 0, fmt.Errorf("bench pipeline: MEMORY USAGE of job j%d: %w", seq-1, err)
		}
		sum += jb
		k++
	}
	total := sum * int64(n) / k
	for sh := range store.DefaultShards {
		t := store.ShardKeysOf(prefix, store.DefaultShards, sh)
		for _, key := range []string{t.Jid, t.Jobs, t.JobExp} {
			b, err := r.rdb.MemoryUsage(ctx, key).Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				return 0, fmt.Errorf("bench pipeline: MEMORY USAGE %s: %w", key, err)
			}
			total += b
		}
	}
	return total, nil
}

type pendStats struct {
	sampled       int
	mean          float64
	p50, p99, max int64
	atLimit       float64
	fullBytes     int64
	fullSubKey    string
}

// pendingStats samples the pend: lists of up to 5,000 subscriptions.
func (r *pipelineRun) pendingStats(ctx context.Context, prefix string) (pendStats, error) {
	step := max(1, r.o.subs/5000)
	pipe := r.rdb.Pipeline()
	var cmds []*redis.IntCmd
	for i := 0; i < r.o.subs; i += step {
		cmds = append(cmds, pipe.LLen(ctx, store.KeysOf(prefix, 0, "f"+strconv.Itoa(i)).Pending))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return pendStats{}, fmt.Errorf("bench pipeline: sample pend: %w", err)
	}
	var st pendStats
	sizes := make([]int64, len(cmds))
	var sum int64
	atLimit := 0
	for i, c := range cmds {
		sizes[i] = c.Val()
		sum += sizes[i]
		if sizes[i] >= int64(r.o.pendingLimit) {
			atLimit++
			if st.fullSubKey == "" {
				st.fullSubKey = store.KeysOf(prefix, 0, "f"+strconv.Itoa(i*step)).Pending
			}
		}
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	st.sampled = len(sizes)
	st.mean = float64(sum) / float64(len(sizes))
	st.p50 = sizes[len(sizes)/2]
	st.p99 = sizes[len(sizes)*99/100]
	st.max = sizes[len(sizes)-1]
	st.atLimit = float64(atLimit) / float64(len(sizes))
	if st.fullSubKey != "" {
		b, err := r.rdb.MemoryUsage(ctx, st.fullSubKey).Result()
		if err != nil {
			return st, fmt.Errorf("bench pipeline: MEMORY USAGE: %w", err)
		}
		st.fullBytes = b
	}
	return st, nil
}

// procMem returns this process's resident set size and its peak, in bytes.
func procMem() (rss, hwm int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// clusterPhase imports the subscriptions into the Redis Cluster of
// --redis-cluster and records the same events there as the raw Redis
// phase did on the single server, and prints the cluster's rate, per
// primary, against the single server's (singlePairs, pairs/s).
func (r *pipelineRun) clusterPhase(ctx context.Context, ix *matcher.Index, bodies [][]byte, seqs []uint64, runID string, singlePairs float64) error {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(r.o.redisCluster, ","), ReadTimeout: 10 * time.Second})
	defer cc.Close()
	var primaries atomic.Int64
	if err := cc.ForEachMaster(ctx, func(context.Context, *redis.Client) error {
		primaries.Add(1)
		return nil
	}); err != nil {
		return fmt.Errorf("bench pipeline: --redis-cluster: %w", err)
	}
	st := store.New(cc, store.Config{Prefix: "bench:" + runID + ":cluster:", InstantWindow: time.Minute, PendingLimit: r.o.pendingLimit})
	t := time.Now()
	if err := r.importSubs(ctx, st); err != nil {
		return err
	}
	importTime := time.Since(t)
	all, err := matchAll(ix, bodies, seqs)
	if err != nil {
		return err
	}
	cpu0, err := clusterCPU(ctx, cc)
	if err != nil {
		return err
	}
	p, err := r.recordAll(ctx, st, ix, all)
	if err != nil {
		return err
	}
	cpu1, err := clusterCPU(ctx, cc)
	if err != nil {
		return err
	}
	pairs := float64(p.pairs) / p.elapsed.Seconds()
	n := float64(primaries.Load())
	r.printf("redis cluster (%d primaries; the same record calls, %d shards): import %s; %d events, %d pairs in %s: %.0f events/s, %.0f pairs/s, %.0f pairs/s per primary\n",
		primaries.Load(), store.DefaultShards, importTime.Round(time.Millisecond), p.events, p.pairs, p.elapsed.Round(time.Millisecond),
		float64(p.events)/p.elapsed.Seconds(), pairs, pairs/n)
	r.printf("  cluster / single server: %.3f (goal >= 0.70: %s); per primary / single server: %.3f\n",
		pairs/singlePairs, verdict(pairs/singlePairs >= 0.7), pairs/n/singlePairs)
	r.printf("  redis main threads' CPU in the phase: primaries %.1f s (%.2f us/pair), replicas %.1f s\n",
		cpu1[0]-cpu0[0], 1e6*(cpu1[0]-cpu0[0])/float64(p.pairs), cpu1[1]-cpu0[1])
	r.printf("RESULT_CLUSTER primaries=%d pairs=%d cluster_pairs_per_s=%.0f per_primary_pairs_per_s=%.0f single_pairs_per_s=%.0f ratio=%.3f\n",
		primaries.Load(), p.pairs, pairs, pairs/n, singlePairs, pairs/singlePairs)
	return nil
}

// clusterCPU sums the main threads' CPU time (s) of the cluster's
// primaries and of its replicas.
func clusterCPU(ctx context.Context, cc *redis.ClusterClient) ([2]float64, error) {
	var mu sync.Mutex
	var out [2]float64
	add := func(i int) func(context.Context, *redis.Client) error {
		return func(ctx context.Context, c *redis.Client) error {
			info, err := c.Info(ctx, "cpu").Result()
			if err != nil {
				return err
			}
			var sum float64
			for _, line := range strings.Split(info, "\n") {
				k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
				if ok && (k == "used_cpu_user_main_thread" || k == "used_cpu_sys_main_thread") {
					f, _ := strconv.ParseFloat(v, 64)
					sum += f
				}
			}
			mu.Lock()
			out[i] += sum
			mu.Unlock()
			return nil
		}
	}
	if err := cc.ForEachMaster(ctx, add(0)); err != nil {
		return out, fmt.Errorf("bench pipeline: cluster CPU: %w", err)
	}
	if err := cc.ForEachSlave(ctx, add(1)); err != nil {
		return out, fmt.Errorf("bench pipeline: cluster CPU: %w", err)
	}
	return out, nil
}
