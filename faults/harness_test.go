//go:build faults

package faults_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/connect"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/internal/workload"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/smtpsink"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/webhook"
)

// binEnv names the jobalert binary under test; without it TestMain builds
// one from this tree.
const binEnv = "JOBALERT_FAULTS_BIN"

var jobalertBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if _, err := exec.LookPath("redis-server"); err != nil {
			fmt.Fprintln(os.Stderr, "faults: redis-server is required (apt-get install redis-server, or run through make test-faults)")
			return 1
		}
		jobalertBin = os.Getenv(binEnv)
		if jobalertBin == "" {
			dir, err := os.MkdirTemp("", "jobalert-faults-bin")
			if err != nil {
				fmt.Fprintln(os.Stderr, "faults:", err)
				return 1
			}
			defer os.RemoveAll(dir)
			jobalertBin = filepath.Join(dir, "jobalert")
			cmd := exec.Command("go", "build", "-o", jobalertBin, "github.com/jobalert/jobalert/cmd/jobalert")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "faults: build jobalert:", err)
				return 1
			}
		}
		return m.Run()
	}())
}

// ---------------------------------------------------------------------------
// redis-server child

// redisServer is a redis-server child process with AOF and appendfsync
// always, which a test can kill -9 and start again on the same directory
// and port.
type redisServer struct {
	t    *testing.T
	dir  string
	port int
	URL  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	r := &redisServer{t: t, dir: t.TempDir(), port: testenv.FreePort(t)}
	r.URL = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	r.start()
	t.Cleanup(func() { r.kill9() })
	return r
}

func (r *redisServer) start() {
	r.t.Helper()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	testenv.WaitRedis(r.t, r.URL)
}

// kill9 kills redis-server with SIGKILL and waits for it to be gone.
func (r *redisServer) kill9() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// ---------------------------------------------------------------------------
// embedded NATS

// natsServer is an embedded JetStream server on a fixed port and store
// directory, so that it can be stopped and started again.
type natsServer struct {
	t    *testing.T
	dir  string
	port int
	URL  string
	s    *server.Server
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	n := &natsServer{t: t, dir: filepath.Join(t.TempDir(), "js"), port: testenv.FreePort(t)}
	n.URL = fmt.Sprintf("nats://127.0.0.1:%d", n.port)
	n.s = testenv.NATSAt(t, n.dir, n.port)
	return n
}

func (n *natsServer) stop() {
	n.s.Shutdown()
	n.s.WaitForShutdown()
}

func (n *natsServer) restart() {
	n.t.Helper()
	n.s = testenv.NATSAt(n.t, n.dir, n.port)
}

// ---------------------------------------------------------------------------
// the rig: one scenario's servers, workload and oracle

// pair is one (subscription, job) alert.
type pair struct{ sub, job string }

// rig is everything one scenario runs against. Each scenario has its own
// redis-server (or Redis Cluster), NATS server, SMTP sink and services.
type rig struct {
	t     *testing.T
	n     int // scenario number
	start time.Time

	redis   *redisServer          // single-node scenarios
	cluster *testenv.RedisCluster // Redis Cluster scenarios
	nats    *natsServer
	sink    *smtpsink.Sink

	rdb redis.UniversalClient
	st  *store.Redis
	// durables are the consumers the services read JOBS through: the
	// default one, or one per filter partition.
	durables []string
	prefix   string
	nc       *nats.Conn
	js       jetstream.JetStream

	gen      *workload.Generator
	ref      *matcher.Reference
	subs     []string
	expected map[pair]bool

	env      map[string]string
	services []*service

	// webhookEvery, set before workload, makes every n-th subscription
	// with few matches a webhook subscription too (hook receives its
	// calls); hookExpected are the pairs its calls must carry.
	webhookEvery int
	hook         *hookSink
	hookExpected map[pair]bool
}

// hookSink is the webhook receiver: it answers 200 and counts each (subscription,
// job) pair the calls carry.
type hookSink struct {
	srv   *httptest.Server
	mu    sync.Mutex
	pairs map[pair]int
	calls int
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{pairs: map[pair]int{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct {
			SubscriptionID string `json:"subscription_id"`
			Jobs           []struct {
				ID string `json:"id"`
			} `json:"jobs"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.calls++
		for _, j := range body.Jobs {
			h.pairs[pair{body.SubscriptionID, j.ID}]++
		}
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// missing counts the pairs of want the receiver has not seen, and the
// listings beyond one.
func (h *hookSink) missing(want map[pair]bool) (lost, dups, calls int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range want {
		if h.pairs[p] == 0 {
			lost++
		}
	}
	for _, n := range h.pairs {
		dups += max(n-1, 0)
	}
	return lost, dups, h.calls
}

// newRig starts a scenario's servers, with a single redis-server.
func newRig(t *testing.T, n int) *rig {
	t.Helper()
	return newRigOn(t, n, false)
}

// newClusterRig starts a scenario's servers, with a Redis Cluster of three
// primaries and three replicas (testenv.StartRedisCluster,
// cluster-node-timeout 2 s) instead of a single redis-server.
func newClusterRig(t *testing.T, n int) *rig {
	t.Helper()
	return newRigOn(t, n, true)
}

func newRigOn(t *testing.T, n int, cluster bool) *rig {
	t.Helper()
	r := &rig{t: t, n: n, start: time.Now(), prefix: "fi:", expected: map[pair]bool{}, ref: matcher.NewReference(),
		durables: []string{consumer.DefaultConsumer}}
	redisEnv := map[string]string{}
	if cluster {
		r.cluster = testenv.StartRedisCluster(t)
		r.logf("redis cluster: primaries %v, replicas %v", r.cluster.Primaries, r.cluster.Replicas)
		redisEnv["JOBALERT_REDIS_CLUSTER"] = strings.Join(r.cluster.Addrs, ",")
		// The service's own cluster client (internal/connect), which
		// follows a failover within seconds.
		rdb, err := connect.Redis(&config.Config{RedisURL: "redis://127.0.0.1:6379/0", RedisCluster: r.cluster.Addrs})
		if err != nil {
			t.Fatal(err)
		}
		r.rdb = rdb
	} else {
		r.redis = startRedis(t)
		redisEnv["JOBALERT_REDIS_URL"] = r.redis.URL
		opt, err := redis.ParseURL(r.redis.URL)
		if err != nil {
			t.Fatal(err)
		}
		r.rdb = redis.NewClient(opt)
	}
	t.Cleanup(func() { _ = r.rdb.Close() })
	r.st = store.New(r.rdb, store.Config{Prefix: r.prefix})
	r.nats = startNATS(t)
	sink, err := smtpsink.New(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	r.sink = sink

	r.nc, err = nats.Connect(r.nats.URL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(true), nats.Name("faults-"+strconv.Itoa(n)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.nc.Close)
	if r.js, err = jetstream.New(r.nc); err != nil {
		t.Fatal(err)
	}
	if err := consumer.EnsureStreams(context.Background(), r.js, consumer.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if r.gen, err = workload.NewGenerator("popular", uint64(1000+n)); err != nil {
		t.Fatal(err)
	}
	r.env = map[string]string{
		"JOBALERT_NATS_URL":         r.nats.URL,
		"JOBALERT_REDIS_PREFIX":     r.prefix,
		"JOBALERT_SMTP_HOST":        sink.Host(),
		"JOBALERT_SMTP_PORT":        strconv.Itoa(sink.Port()),
		"JOBALERT_SMTP_TLS":         "none",
		"JOBALERT_SMTP_TIMEOUT":     "5s",
		"JOBALERT_SMTP_POOL":        "4",
		"JOBALERT_MAIL_FROM":        "jobalert <alerts@jobalert.test>",
		"JOBALERT_PUBLIC_URL":       "http://jobalert.test",
		"JOBALERT_SECRET":           "fault-suite-secret-0123456789abcdef",
		"JOBALERT_INSTANT_WINDOW":   "200ms",
		"JOBALERT_DIGEST_CAP":       strconv.Itoa(digestCap),
		"JOBALERT_SHUTDOWN_TIMEOUT": "10s",
		"JOBALERT_LOG_LEVEL":        "info",
		// The generated jobs reuse companies, titles and places, which
		// repost collapsing (docs/events.md) would merge; the suite's
		// expected pairs count every job id as its own job.
		"JOBALERT_REPOST_WINDOW": "0",
	}
	for k, v := range redisEnv {
		r.env[k] = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			r.dumpState()
		}
	})
	return r
}

// logf prints a line with the scenario's elapsed time.
func (r *rig) logf(format string, args ...any) {
	r.t.Helper()
	r.t.Logf("[%6.1fs] "+format, append([]any{time.Since(r.start).Seconds()}, args...)...)
}

// digestCap is JOBALERT_DIGEST_CAP, the most the configuration allows:
// every job a digest holds is listed, none hidden behind "and N more", as
// long as no subscription matches more than maxPerSub jobs of a scenario.
const (
	digestCap = 500
	maxPerSub = 450
)

// workload draws nJobs realistic jobs, with ids and URLs unique to the
// scenario, and nSubs active instant subscriptions with realistic filters,
// created directly in Redis; it records the pairs the oracle expects.
// Filters that would match more than maxPerSub of the jobs (the broadest
// 5-10% of the generator's filters: "any H-1B job", "anything remote") are
// left out, so that every match of a subscription fits one digest and the
// check sees every job by its URL.
func (r *rig) workload(nSubs, nJobs int) []matcher.Job {
	r.t.Helper()
	jobs := make([]matcher.Job, nJobs)
	prepared := make([]*matcher.PreparedJob, nJobs)
	for i := range nJobs {
		j := r.gen.Job(i)
		j.ID = fmt.Sprintf("s%d-j%d", r.n, i)
		j.URL = "https://jobs.example.com/job/" + j.ID
		jobs[i], prepared[i] = j, matcher.Prepare(&j)
	}
	var subs []*store.Subscription
	skipped := 0
	for i := 0; len(subs) < nSubs; i++ {
		f := r.gen.Filter(i)
		c, err := matcher.Compile(f.Filter)
		if err != nil {
			r.t.Fatalf("filter %d: %v", i, err)
		}
		n := 0
		for _, p := range prepared {
			if c.Matches(p) {
				n++
			}
		}
		if n > maxPerSub {
			skipped++
			continue
		}
		id := fmt.Sprintf("sub_%04d", i)
		sub := &store.Subscription{ID: id, Email: fmt.Sprintf("user%04d@example.test", i), Filter: f.Filter,
			Frequency: "instant", Timezone: "UTC", Status: store.StatusActive}
		// Webhook bodies have a size limit: only subscriptions whose
		// matches surely fit one get a webhook.
		if r.webhookEvery > 0 && len(subs)%r.webhookEvery == 0 && n <= 20 {
			if r.hook == nil {
				r.hook, r.hookExpected = newHookSink(r.t), map[pair]bool{}
			}
			sub.WebhookURL = r.hook.srv.URL + "/hook/" + id
			sub.Channels = []string{store.ChannelEmail, store.ChannelWebhook}
		}
		subs = append(subs, sub)
		if err := r.ref.Add(id, f.Filter); err != nil {
			r.t.Fatalf("filter %d: %v", i, err)
		}
		r.subs = append(r.subs, id)
	}
	hooked := map[string]bool{}
	for _, sub := range subs {
		hooked[sub.ID] = sub.WebhookURL != ""
	}
	for i := range jobs {
		for _, sub := range r.ref.MatchIDs(&jobs[i]) {
			r.expected[pair{sub, jobs[i].ID}] = true
			if hooked[sub] {
				r.hookExpected[pair{sub, jobs[i].ID}] = true
			}
		}
	}
	ctx := context.Background()
	if r.hook != nil {
		r.env["JOBALERT_WEBHOOK_ALLOW_PRIVATE"] = "true"
		hooks := webhook.New(r.rdb, r.prefix, webhook.Config{AllowPrivate: true}, nil)
		for _, sub := range subs {
			if sub.WebhookURL == "" {
				continue
			}
			secret, err := webhook.NewSecret()
			if err == nil {
				err = hooks.SetEndpoint(ctx, sub.ID, sub.WebhookURL, secret)
			}
			if err != nil {
				r.t.Fatalf("webhook endpoint of %s: %v", sub.ID, err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(subs); i += 8 {
				if err := r.st.CreateSubscription(ctx, subs[i], time.Now()); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		r.t.Fatalf("create subscription: %v", err)
	}
	r.logf("workload: %d subscriptions (%d broader filters left out), %d jobs, %d expected pairs (%.1f a job); %d pairs by webhook too",
		len(subs), skipped, nJobs, len(r.expected), float64(len(r.expected))/float64(max(nJobs, 1)), len(r.hookExpected))
	return jobs
}

// event is one message to publish.
type event struct {
	subject string
	msgID   string
	body    []byte
}

func jobEvents(jobs []matcher.Job) []event {
	out := make([]event, len(jobs))
	for i, j := range jobs {
		b, err := json.Marshal(j)
		if err != nil {
			panic(err)
		}
		out[i] = event{subject: "jobs.created", msgID: j.ID, body: b}
	}
	return out
}

// publish publishes events in order, at most perSecond a second (0: as
// fast as possible), retrying each until NATS acks it (the Nats-Msg-Id
// makes a retry after a lost ack harmless), for up to a minute per event.
// It returns the stream sequence of every event.
func (r *rig) publish(events []event, perSecond float64) []uint64 {
	p := r.publishInBackground(events, perSecond)
	<-p.done
	return p.seqs
}

// publisher is a publish running in the background.
type publisher struct {
	n    atomic.Int64 // events published so far
	seqs []uint64     // stream sequences, complete once done is closed
	done chan struct{}
}

func (r *rig) publishInBackground(events []event, perSecond float64) *publisher {
	p := &publisher{seqs: make([]uint64, len(events)), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		start := time.Now()
		for i, ev := range events {
			if perSecond > 0 {
				if d := time.Until(start.Add(time.Duration(float64(i) / perSecond * float64(time.Second)))); d > 0 {
					time.Sleep(d)
				}
			}
			giveUp := time.Now().Add(time.Minute)
			for {
				m := nats.NewMsg(ev.subject)
				m.Data = ev.body
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				ack, err := r.js.PublishMsg(ctx, m, jetstream.WithMsgID(ev.msgID))
				cancel()
				if err == nil {
					p.seqs[i] = ack.Sequence
					break
				}
				if time.Now().After(giveUp) {
					r.t.Errorf("publish %s: %v; giving up", ev.msgID, err)
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
			p.n.Add(1)
		}
	}()
	return p
}

// waitPublished waits until the publisher has published n events.
func (r *rig) waitPublished(p *publisher, n int) {
	r.t.Helper()
	testenv.Eventually(r.t, 2*time.Minute, func() bool { return p.n.Load() >= int64(n) }, "%d events not published (at %d)", n, p.n.Load())
}

// consumerInfo returns the state of the rig's durable consumers summed
// (pending, ack pending, redelivered; the lowest ack floor), or nil while
// NATS is unreachable or a durable does not exist yet.
func (r *rig) consumerInfo() *jetstream.ConsumerInfo {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var sum *jetstream.ConsumerInfo
	for _, d := range r.durables {
		c, err := r.js.Consumer(ctx, consumer.DefaultStream, d)
		if err != nil {
			return nil
		}
		info, err := c.Info(ctx)
		if err != nil {
			return nil
		}
		if sum == nil {
			sum = info
			continue
		}
		sum.NumPending += info.NumPending
		sum.NumAckPending += info.NumAckPending
		sum.NumRedelivered += info.NumRedelivered
		sum.AckFloor.Stream = min(sum.AckFloor.Stream, info.AckFloor.Stream)
	}
	return sum
}

// acked returns how many stream messages the durable consumers have acked
// in order (the lowest ack floor), or -1 when unknown.
func (r *rig) acked() int {
	if info := r.consumerInfo(); info != nil {
		return int(info.AckFloor.Stream)
	}
	return -1
}

// ackedBy returns the ack floor of one durable consumer, or -1 when unknown.
func (r *rig) ackedBy(durable string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := r.js.Consumer(ctx, consumer.DefaultStream, durable)
	if err != nil {
		return -1
	}
	info, err := c.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.AckFloor.Stream)
}

// waitAcked waits until the consumer's ack floor reaches n.
func (r *rig) waitAcked(n int, timeout time.Duration) {
	r.t.Helper()
	testenv.Eventually(r.t, timeout, func() bool { return r.acked() >= n }, "ack floor did not reach %d (at %d)", n, r.acked())
}

// ---------------------------------------------------------------------------
// jobalert serve child processes

// service is one `jobalert serve` child process.
type service struct {
	t       *testing.T
	name    string
	addr    string // HTTP address
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error     // Wait's result, once done
	exited  time.Time // when it exited, once done

	mu      sync.Mutex
	metrics map[string]float64 // the last scrape
}

// startService starts `jobalert serve` with the rig's configuration plus
// extra, and waits until it is ready.
func (r *rig) startService(name string, extra map[string]string) *service {
	r.t.Helper()
	s := r.spawn(name, extra)
	s.waitReady()
	return s
}

// spawn starts `jobalert serve` with the rig's configuration plus extra.
func (r *rig) spawn(name string, extra map[string]string) *service {
	r.t.Helper()
	s := &service{t: r.t, name: name, addr: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(r.t)),
		logPath: filepath.Join(r.t.TempDir(), name+".log")}
	// Each process is its own instance (JOBALERT_INSTANCE, as
	// docs/operations.md asks of replicas) unless extra names one: a
	// restart that passes its predecessor's takes its orphans back at once.
	env := append([]string{}, "PATH="+os.Getenv("PATH"), "JOBALERT_HTTP_ADDR="+s.addr)
	if _, ok := extra["JOBALERT_INSTANCE"]; !ok {
		env = append(env, "JOBALERT_INSTANCE="+name)
	}
	for k, v := range r.env {
		if _, ok := extra[k]; !ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	s.cmd = exec.Command(jobalertBin, "serve")
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		r.t.Fatalf("start %s: %v", name, err)
	}
	s.done = make(chan struct{})
	go func() {
		s.err = s.cmd.Wait()
		s.exited = time.Now()
		_ = logf.Close()
		close(s.done)
	}()
	r.services = append(r.services, s)
	r.t.Cleanup(func() {
		s.kill9()
		if r.t.Failed() {
			s.dumpLog(60)
		}
		s.summarizeLog()
	})
	return s
}

// waitReady waits until the process answers /readyz with 200.
func (s *service) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s.get("/readyz") == nil {
			break
		}
		select {
		case <-s.done:
			s.dumpLog(40)
			s.t.Fatalf("%s exited before it was ready: %v", s.name, s.err)
		default:
		}
		if time.Now().After(deadline) {
			s.dumpLog(40)
			s.t.Fatalf("%s not ready in 30s", s.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Logf("%s ready (pid %d, http %s)", s.name, s.cmd.Process.Pid, s.addr)
}

func (s *service) get(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, resp.Status)
	}
	return nil
}

// scrape reads the process's /metrics and keeps the samples (by their
// full name with labels) for later, so the counts of a process that was
// killed stay known.
func (s *service) scrape() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	if sc.Err() == nil {
		s.mu.Lock()
		s.metrics = m
		s.mu.Unlock()
	}
}

// metric sums the last scraped samples of name whose labels contain every
// one of labels (e.g. `outcome="recorded"`).
func (s *service) metric(name string, labels ...string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum float64
	for k, v := range s.metrics {
		base, lbl, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(lbl, l)
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// recorded is the number of events this process recorded, from its last
// scrape.
func (s *service) recorded() int {
	return int(s.metric("jobalert_consumer_events_total", `outcome="recorded"`))
}

// kill9 kills the process with SIGKILL and waits for it.
func (s *service) kill9() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// sigterm sends SIGTERM and returns how long the process took to exit
// (failing the test after limit) and its exit error.
func (s *service) sigterm(limit time.Duration) (time.Duration, error) {
	s.t.Helper()
	sent := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM %s: %v", s.name, err)
	}
	select {
	case <-s.done:
		return s.exited.Sub(sent), s.err
	case <-time.After(limit):
		s.dumpLog(40)
		s.t.Fatalf("%s did not exit within %v of SIGTERM", s.name, limit)
		return 0, nil
	}
}

func (s *service) dumpLog(lines int) {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	s.t.Logf("--- last %d log lines of %s ---\n%s", len(all), s.name, strings.Join(all, "\n"))
}

var logMsg = regexp.MustCompile(`level=(WARN|ERROR) msg="([^"]*)"`)

// summarizeLog logs how often each warning and error message appeared in
// the process's log: what the service went through.
func (s *service) summarizeLog() {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return
	}
	counts := map[string]int{}
	for _, g := range logMsg.FindAllStringSubmatch(string(b), -1) {
		counts[g[1]+" "+g[2]]++
	}
	if len(counts) == 0 {
		return
	}
	lines := make([]string, 0, len(counts))
	for m, n := range counts {
		lines = append(lines, fmt.Sprintf("  %5d× %s", n, m))
	}
	slices.Sort(lines)
	s.t.Logf("%s log, warnings and errors:\n%s", s.name, strings.Join(lines, "\n"))
}

// logLines returns the lines of the process's log that contain substr.
func (s *service) logLines(substr string) []string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// scrapeEvery scrapes the services every d until the returned func is called.
func (r *rig) scrapeEvery(d time.Duration, svcs ...*service) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			for _, s := range svcs {
				select {
				case <-s.done:
				default:
					s.scrape()
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// ---------------------------------------------------------------------------
// what the sink received, against the oracle

var (
	jobURL   = regexp.MustCompile(`https://jobs\.example\.com/job/([A-Za-z0-9-]+)`)
	moreLine = regexp.MustCompile(`(?m)^And (\d+) more`)
)

// mail is one received email, parsed.
type mail struct {
	sub, digest string
	jobs        []string
	more        int
}

func parseMail(m smtpsink.Message) mail {
	out := mail{sub: m.Header.Get("X-Jobalert-Subscription"), digest: m.Header.Get("X-Jobalert-Digest")}
	seen := map[string]bool{}
	for _, g := range jobURL.FindAllStringSubmatch(m.Text, -1) {
		if !seen[g[1]] {
			seen[g[1]] = true
			out.jobs = append(out.jobs, g[1])
		}
	}
	if g := moreLine.FindStringSubmatch(m.Text); g != nil {
		out.more, _ = strconv.Atoi(g[1])
	}
	return out
}

// inbox folds the sink's messages into counts, incrementally.
type inbox struct {
	seen     int                     // acknowledged messages folded in
	pairs    map[pair]int            // listings per pair, acknowledged emails
	digests  map[pair]map[string]int // per pair: digest id -> times received
	received map[string]int          // digest id -> times received (acknowledged)
	hidden   int                     // jobs behind "and N more"
	emails   int
	untagged int // emails without the subscription header
}

func newInbox() *inbox {
	return &inbox{pairs: map[pair]int{}, digests: map[pair]map[string]int{}, received: map[string]int{}}
}

func (in *inbox) fold(msgs []smtpsink.Message) {
	for _, m := range msgs[in.seen:] {
		p := parseMail(m)
		in.emails++
		in.hidden += p.more
		if p.sub == "" {
			in.untagged++
			continue
		}
		in.received[p.digest]++
		for _, j := range p.jobs {
			k := pair{p.sub, j}
			in.pairs[k]++
			if in.digests[k] == nil {
				in.digests[k] = map[string]int{}
			}
			in.digests[k][p.digest]++
		}
	}
	in.seen = len(msgs)
}

// tally is a scenario's result.
type tally struct {
	Expected, Delivered, Duplicates, Lost int
	Unexpected                            int // pairs delivered that the oracle does not expect
	CrossDigest                           int // a pair listed in two different digests: a dedup failure
	Resent                                int // extra listings from a digest sent again whole (same digest id)
	ResentDigests                         int // digests received more than once
	AfterData                             int // listings in unacknowledged emails whose digest was then sent again
	AfterDataEmails                       int // those unacknowledged emails
	Unacked                               int // emails read in full and never acknowledged (sink)
	Emails, Hidden, Untagged              int
	lostSample                            []pair
}

func (r *rig) tally(in *inbox) tally {
	in.fold(r.sink.Messages())
	t := tally{Expected: len(r.expected), Emails: in.emails, Hidden: in.hidden, Untagged: in.untagged}
	for k, n := range in.pairs {
		t.Delivered += n
		if !r.expected[k] {
			t.Unexpected++
		}
		if n > 1 {
			if len(in.digests[k]) > 1 {
				t.CrossDigest += n - 1
			} else {
				t.Resent += n - 1
			}
		}
	}
	for _, n := range in.received {
		if n > 1 {
			t.ResentDigests++
		}
	}
	for k := range r.expected {
		if in.pairs[k] == 0 {
			t.Lost++
			if len(t.lostSample) < 5 {
				t.lostSample = append(t.lostSample, k)
			}
		}
	}
	unacked := r.sink.Unacknowledged()
	t.Unacked = len(unacked)
	for _, m := range unacked {
		p := parseMail(m)
		if in.received[p.digest] > 0 {
			t.AfterDataEmails++
		}
		for _, j := range p.jobs {
			if in.digests[pair{p.sub, j}][p.digest] > 0 {
				t.AfterData++
			}
		}
	}
	t.Duplicates = t.Resent + t.CrossDigest + t.AfterData
	return t
}

// waitDelivered waits until every expected pair was delivered, then until
// the pipeline is quiet (nothing pending in NATS, nothing due or in the
// outbox in Redis, no new email for quiet), so that late duplicates are
// counted too. It returns the tally; on timeout, the tally as it stands.
func (r *rig) waitDelivered(timeout, quiet time.Duration) tally {
	r.t.Helper()
	t, _ := r.waitDeliveredBy(timeout, quiet, time.Time{})
	return t
}

// claims returns what the owner ids (docs/operations.md, "<instance>/<boot
// id>") that satisfy keep hold: outbox digests and webhook deliveries. The
// digests' owners are in each shard's owners hash beside its outbox, the
// webhook queue's in {wh}owners (docs/redis.md, docs/webhooks.md). It
// returns nil when Redis does not answer.
func (r *rig) claims(keep func(owner string) bool) *claimSet {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	out := &claimSet{digests: map[string]int{}, hooks: map[string]bool{}}
	for k := range store.DefaultShards {
		owners := strings.TrimSuffix(store.ShardKeysOf(r.prefix, store.DefaultShards, k).Outbox, "outbox") + "owners"
		m, err := r.rdb.HGetAll(ctx, owners).Result()
		if err != nil {
			return nil
		}
		for _, o := range m {
			if keep(o) {
				out.digests[o]++
			}
		}
	}
	hooks, err := r.rdb.ZRange(ctx, r.prefix+"{wh}owners", 0, -1).Result()
	if err != nil {
		return nil
	}
	for _, o := range hooks {
		if keep(o) {
			out.hooks[o] = true
		}
	}
	return out
}

// claimSet is what owners hold: outbox digests by owner, and the owners
// holding webhook deliveries.
type claimSet struct {
	digests map[string]int
	hooks   map[string]bool
}

func (c *claimSet) owners() []string {
	var out []string
	for o := range c.digests {
		out = append(out, o)
	}
	for o := range c.hooks {
		if _, ok := c.digests[o]; !ok {
			out = append(out, o)
		}
	}
	return out
}

func (c *claimSet) String() string {
	return fmt.Sprintf("digests %v, webhook deliveries of %v", c.digests, slices.Collect(maps.Keys(c.hooks)))
}

// takeoverLimit is how soon after a kill -9 the outbox digests and webhook
// deliveries the dead process had claimed must have been taken by a live
// process or its restart (issue 14).
const takeoverLimit = 15 * time.Second

// killedOwners returns the owner ids of instance that hold claims: called
// right after a kill and before any restart, they are the dead boot's.
func (r *rig) killedOwners(instance string) []string {
	r.t.Helper()
	all := r.claims(func(string) bool { return true })
	if all == nil {
		r.t.Fatalf("redis did not answer for the claims of %s", instance)
	}
	r.logf("claims at the kill of %s: %v; %s", instance, all, r.pipelineState())
	var owners []string
	for _, o := range all.owners() {
		if strings.HasPrefix(o, instance+"/") {
			owners = append(owners, o)
		}
	}
	return owners
}

// waitHolding waits until ready() holds and instance holds claimed outbox
// digests, so that a kill leaves claims for the others to take.
func (r *rig) waitHolding(instance string, ready func() bool, what string) {
	r.t.Helper()
	mine := func(o string) bool { return strings.HasPrefix(o, instance+"/") }
	testenv.Eventually(r.t, 2*time.Minute, func() bool {
		if !ready() {
			return false
		}
		c := r.claims(mine)
		return c != nil && len(c.digests) > 0
	}, "%s with digests claimed by %s", what, instance)
}

// waitTakenOver waits until no outbox digest and no webhook delivery is
// held by owners (the killed boot's ids, from killedOwners): taken over by
// a live process or its restart, or finished. It fails the test after
// takeoverLimit from the kill, and prints how long it took and what there
// was.
func (r *rig) waitTakenOver(name string, owners []string, killed time.Time) {
	r.t.Helper()
	dead := func(o string) bool { return slices.Contains(owners, o) }
	digests, hooks := 0, false
	if at := r.claims(dead); at != nil {
		for _, n := range at.digests {
			digests += n
		}
		hooks = len(at.hooks) > 0
	}
	for {
		held := r.claims(dead)
		if held != nil && len(held.owners()) == 0 {
			break
		}
		if time.Since(killed) > takeoverLimit {
			r.t.Errorf("%v after the kill: got %v still held by the killed %s, want none within %v", takeoverLimit, held, name, takeoverLimit)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	line := fmt.Sprintf("scenario=%d takeover=%.1fs digests=%d webhook_claims=%v (the killed %s's claims taken; limit %v)",
		r.n, time.Since(killed).Seconds(), digests, hooks, name, takeoverLimit)
	fmt.Println(line)
	r.logf("%s", line)
}

// recoveryLimit is how soon after a kill -9 every alert must have arrived
// (issue 14): a dead process's claims are taken over through the liveness
// keys within seconds, not after the 2-minute lease.
const recoveryLimit = 30 * time.Second

// waitRecovered is waitDelivered after a fault at fault: it fails the test
// when the last expected pair has not arrived within recoveryLimit of it
// (checked as it polls, the moment the limit passes), and returns the
// recovery time, from the fault to the last pair, with the tally.
func (r *rig) waitRecovered(fault time.Time, timeout, quiet time.Duration) (tally, time.Duration) {
	r.t.Helper()
	t, done := r.waitDeliveredBy(timeout, quiet, fault.Add(recoveryLimit))
	took := done.Sub(fault)
	if done.IsZero() {
		took = -1
	}
	line := fmt.Sprintf("scenario=%d recovery=%.1fs (fault to the last expected pair; limit %v)", r.n, took.Seconds(), recoveryLimit)
	fmt.Println(line)
	r.logf("%s", line)
	return t, took
}

// waitDeliveredBy is waitDelivered that also returns when the last expected
// pair arrived (zero if it did not) and, when limit is not zero, fails the
// test once limit passes with pairs still missing.
func (r *rig) waitDeliveredBy(timeout, quiet time.Duration, limit time.Time) (tally, time.Time) {
	r.t.Helper()
	in := newInbox()
	deadline := time.Now().Add(timeout)
	lastLost := -1
	nextLog := time.Now().Add(15 * time.Second)
	var done time.Time
	for {
		t := r.tally(in)
		hookLost := 0
		if r.hook != nil {
			hookLost, _, _ = r.hook.missing(r.hookExpected)
		}
		if t.Lost == 0 && hookLost == 0 {
			done = time.Now()
			break
		}
		if !limit.IsZero() && time.Now().After(limit) {
			r.t.Errorf("%v after the fault: got %d of %d expected pairs delivered by email and %d of %d by webhook, want all within %v (%s)",
				recoveryLimit, t.Expected-t.Lost, t.Expected, len(r.hookExpected)-hookLost, len(r.hookExpected), recoveryLimit, r.pipelineState())
			limit = time.Time{}
		}
		if time.Now().After(deadline) {
			r.logf("timed out after %v waiting for delivery: %d of %d pairs missing", timeout, t.Lost, t.Expected)
			return t, time.Time{}
		}
		if time.Now().After(nextLog) || lastLost < 0 {
			r.logf("waiting: %d of %d pairs delivered, %d emails, %s", t.Expected-t.Lost, t.Expected, t.Emails, r.pipelineState())
			nextLog = time.Now().Add(15 * time.Second)
		}
		lastLost = t.Lost
		time.Sleep(250 * time.Millisecond)
	}
	r.logf("every expected pair delivered; waiting for the pipeline to go quiet")
	lastCount, lastChange := -1, time.Now()
	for time.Now().Before(deadline.Add(quiet)) {
		n := r.sink.Stats().Messages + r.sink.Stats().Unacknowledged
		if n != lastCount {
			lastCount, lastChange = n, time.Now()
		}
		if time.Since(lastChange) >= quiet && r.idle() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return r.tally(in), done
}

// idle reports whether nothing is left to do: no event unacked in NATS, no
// digest due or in the outbox.
func (r *rig) idle() bool {
	info := r.consumerInfo()
	if info == nil || info.NumPending > 0 || info.NumAckPending > 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, err := r.st.Backlog(ctx, time.Now())
	return err == nil && b.Scheduled == 0 && b.Outbox == 0
}

// leasedAhead counts the outbox entries not due for more than d: digests
// leased by a process.
func (r *rig) leasedAhead(d time.Duration) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var n int64
	for k := range store.DefaultShards {
		c, err := r.rdb.ZCount(ctx, store.ShardKeysOf(r.prefix, store.DefaultShards, k).Outbox, strconv.FormatInt(time.Now().Add(d).UnixMilli(), 10), "+inf").Result()
		if err != nil {
			r.t.Errorf("outbox: %v", err)
		}
		n += c
	}
	return n
}

func (r *rig) pipelineState() string {
	var b strings.Builder
	if info := r.consumerInfo(); info != nil {
		fmt.Fprintf(&b, "nats pending=%d ack_pending=%d redelivered=%d", info.NumPending, info.NumAckPending, info.NumRedelivered)
	} else {
		b.WriteString("nats unreachable")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	bl, _ := r.st.Backlog(ctx, time.Now())
	fmt.Fprintf(&b, "; redis due=%d outbox=%d", bl.Scheduled, bl.Outbox)
	return b.String()
}

// report prints the scenario's counts in the suite's one-line format, and
// the details after it.
func (r *rig) report(t tally) {
	r.t.Helper()
	line := fmt.Sprintf("scenario=%d expected=%d delivered=%d duplicates=%d lost=%d", r.n, t.Expected, t.Delivered, t.Duplicates, t.Lost)
	fmt.Println(line)
	r.logf("%s", line)
	r.logf("scenario=%d emails=%d unacknowledged=%d after_data_dups=%d (in %d emails sent again) resent_digests=%d resent_dups=%d cross_digest_dups=%d unexpected=%d hidden=%d run=%v",
		r.n, t.Emails, t.Unacked, t.AfterData, t.AfterDataEmails, t.ResentDigests, t.Resent, t.CrossDigest, t.Unexpected, t.Hidden, time.Since(r.start).Round(100*time.Millisecond))
}

// allow says which duplicates a scenario tolerates.
type allow struct {
	// resentDigests is how many whole digests may arrive twice: the
	// window between the SMTP 250 and the digest being marked sent, which
	// only a process killed with -9 can fall into (at most SMTP_POOL
	// digests per kill).
	resentDigests int
	// afterData allows duplicates from emails the sink read in full and
	// dropped the connection on before its 250 (the documented window):
	// each such email, sent again, doubles its listings, so they come from
	// at most Unacked emails.
	afterData bool
}

// check fails the test on any loss, any unexpected or hidden pair, any
// duplicate across digests, and duplicates beyond what a allows.
func (r *rig) check(t tally, a allow) {
	r.t.Helper()
	r.report(t)
	if t.Lost > 0 {
		r.t.Errorf("lost %d of %d expected pairs, e.g. %v", t.Lost, t.Expected, t.lostSample)
		for _, p := range t.lostSample {
			r.explainLost(p)
		}
	}
	if t.Unexpected > 0 {
		r.t.Errorf("%d delivered pairs were not expected by matcher.Reference", t.Unexpected)
	}
	if t.Hidden > 0 || t.Untagged > 0 {
		r.t.Errorf("%d jobs hidden behind \"and N more\", %d emails without X-Jobalert-Subscription: the check cannot see them", t.Hidden, t.Untagged)
	}
	if t.CrossDigest > 0 {
		r.t.Errorf("%d duplicate listings across different digests: dedup failed", t.CrossDigest)
	}
	if t.ResentDigests > a.resentDigests {
		r.t.Errorf("%d digests were sent twice (%d duplicate listings); allowed here: %d", t.ResentDigests, t.Resent, a.resentDigests)
	}
	if t.AfterData > 0 && !a.afterData {
		r.t.Errorf("%d duplicate listings from unacknowledged emails", t.AfterData)
	}
	if t.AfterDataEmails > t.Unacked {
		r.t.Errorf("%d emails in the after-DATA window, more than the %d unacknowledged", t.AfterDataEmails, t.Unacked)
	}
	if r.hook != nil {
		lost, dups, calls := r.hook.missing(r.hookExpected)
		line := fmt.Sprintf("scenario=%d webhook_expected=%d webhook_lost=%d webhook_dups=%d webhook_calls=%d", r.n, len(r.hookExpected), lost, dups, calls)
		fmt.Println(line)
		r.logf("%s", line)
		if lost > 0 {
			r.t.Errorf("webhooks: lost %d of %d expected pairs", lost, len(r.hookExpected))
		}
		// A call sent and not yet recorded when its process died is sent
		// again (same webhook-id, docs/webhooks.md): only a kill allows it.
		if dups > 0 && a.resentDigests == 0 {
			r.t.Errorf("webhooks: %d duplicate listings, want none here", dups)
		}
	}
}

// explainLost logs what Redis knows of a lost pair.
func (r *rig) explainLost(p pair) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	k := store.KeysOf(r.prefix, 0, p.sub)
	seq, _ := r.rdb.HGet(ctx, k.Shard.Jid, p.job).Result()
	pend := "no"
	if seq != "" {
		if _, err := r.rdb.LPos(ctx, k.Pending, seq, redis.LPosArgs{}).Result(); err == nil {
			pend = "yes"
		}
	}
	sub, _ := r.rdb.HMGet(ctx, k.Sub, "status", "cov", "last_sent").Result()
	r.logf("lost %v: job seq=%q pending=%v sub(status,cov,last_sent)=%v", p, seq, pend, sub)
}

// dumpState logs the pipeline's state when a scenario fails.
func (r *rig) dumpState() {
	r.logf("state at failure: %s; sink %+v", r.pipelineState(), r.sink.Stats())
}
