package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/smtpsink"
	"github.com/jobalert/jobalert/store"
)

// stack is the whole service on real parts: embedded JetStream, a real
// redis-server, the go-smtp sink, and every role of jobalert in-process.
type stack struct {
	t    *testing.T
	app  *app
	ns   *server.Server
	sink *smtpsink.Sink
	js   jetstream.JetStream
	nc   *nats.Conn
	env  map[string]string
	// metricsURL is the metrics listener's base URL, with stackOpts.metrics.
	metricsURL string
	// secrets are the passwords, tokens and keys in env (stackOpts.credentials).
	secrets []string
	// shutdown stops the service and returns Run's error; stop (also at
	// cleanup) does too, failing the test on an error.
	shutdown func() error
	stop     func()
}

type stackOpts struct {
	window       string
	wrapRecorder func(consumer.Recorder) consumer.Recorder
	// log, when set, gets the service's log from Info up (from Debug up
	// with debugLog); the test log gets Warn and up.
	log      io.Writer
	debugLog bool
	// credentials runs NATS, Redis and SMTP with passwords, as production
	// does (secrets_e2e_test.go): s.secrets lists every secret set.
	credentials bool
	// metrics runs the metrics listener (JOBALERT_METRICS_ADDR) on a free
	// loopback port.
	metrics bool
	// nats, when set, is the NATS server instead of a plain embedded one,
	// and natsClient the options of the test's own connection to it.
	nats       *server.Server
	natsClient []nats.Option
	// env sets or overrides the service's variables: the connection
	// settings of nats, a Redis of the test's own (JOBALERT_REDIS_URL).
	env map[string]string
}

func startStack(t *testing.T, o stackOpts) *stack {
	t.Helper()
	var cred *credentials
	if o.credentials {
		cred = newCredentials(t)
	}
	ns := o.nats
	if ns == nil {
		ns = cred.natsServer(t)
	}
	sink, err := smtpsink.New(cred.sinkOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	if o.window == "" {
		o.window = "300ms"
	}
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	env := map[string]string{
		"JOBALERT_NATS_URL":       ns.ClientURL(),
		"JOBALERT_REDIS_PREFIX":   "e2e" + testenv.RandomHex(4) + ":",
		"JOBALERT_SMTP_HOST":      sink.Host(),
		"JOBALERT_SMTP_PORT":      strconv.Itoa(sink.Port()),
		"JOBALERT_SMTP_TLS":       "none",
		"JOBALERT_SMTP_TIMEOUT":   "5s",
		"JOBALERT_MAIL_FROM":      "jobalert <alerts@jobalert.test>",
		"JOBALERT_HTTP_ADDR":      addr,
		"JOBALERT_PUBLIC_URL":     "http://" + addr,
		"JOBALERT_SECRET":         "0123456789abcdef0123456789abcdef",
		"JOBALERT_ADMIN_TOKEN":    "admin-secret-token",
		"JOBALERT_INSTANT_WINDOW": o.window,
		// The test's webhook receivers listen on loopback.
		"JOBALERT_WEBHOOK_ALLOW_PRIVATE": "true",
	}
	for k, v := range o.env {
		env[k] = v
	}
	switch {
	case env["JOBALERT_REDIS_URL"] != "" || env["JOBALERT_REDIS_CLUSTER"] != "":
	case o.credentials:
		// ACL users and passwords are set up on a single server.
		env["JOBALERT_REDIS_URL"] = testenv.RedisURL(t)
	default:
		// The test Redis: a single server, or the cluster of
		// scripts/with-redis-cluster.sh.
		for k, v := range testenv.RedisEnv(t) {
			env[k] = v
		}
	}
	s := &stack{t: t, ns: ns, sink: sink, env: env}
	if o.metrics {
		maddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
		env["JOBALERT_METRICS_ADDR"] = maddr
		s.metricsURL = "http://" + maddr
	}
	s.secrets = cred.apply(t, env)
	if len(o.natsClient) > 0 {
		s.nc = testenv.NATSConn(t, ns, o.natsClient...)
	} else {
		s.nc = cred.natsConn(t, ns)
	}
	if s.js, err = jetstream.New(s.nc); err != nil {
		t.Fatal(err)
	}
	s.start(o)
	return s
}

// start runs the service; stop (also at cleanup) shuts it down.
func (s *stack) start(o stackOpts) {
	t := s.t
	t.Helper()
	cfg, err := config.Load(func(k string) string { return s.env[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	if o.log != nil {
		level := slog.LevelInfo
		if o.debugLog {
			level = slog.LevelDebug
		}
		log = slog.New(slog.NewTextHandler(o.log, &slog.HandlerOptions{Level: level}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, roles{consumer: true, notifier: true, api: true}, log,
		appDeps{digestTick: 20 * time.Millisecond, retryBase: 100 * time.Millisecond, wrapRecorder: o.wrapRecorder})
	if err != nil {
		t.Fatal(err)
	}
	s.app = a
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var (
		once   sync.Once
		runErr error
	)
	s.shutdown = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	s.stop = func() {
		if err := s.shutdown(); err != nil {
			t.Errorf("app.Run: got %v, want nil after shutdown", err)
		}
	}
	t.Cleanup(func() { s.stop() }) // a test may replace s.stop
	testenv.Eventually(t, 10*time.Second, func() bool { return a.ready(context.Background()) == nil }, "service not ready")
}

func (s *stack) subscribe(email string, f matcher.Filter) *store.Subscription {
	s.t.Helper()
	sub := &store.Subscription{Email: email, Filter: f, Frequency: "instant", Timezone: "UTC", Status: store.StatusActive}
	if err := s.app.store.CreateSubscription(context.Background(), sub, time.Now()); err != nil {
		s.t.Fatal(err)
	}
	testenv.Eventually(s.t, 2*time.Second, func() bool {
		return s.app.index.Len() > 0 && containsID(s.app.index.MatchIDs(probeJob(f)), sub.ID)
	}, "subscription %s not in the index", sub.ID)
	return sub
}

// probeJob is a job every test filter here matches, to see it indexed.
func probeJob(f matcher.Filter) *matcher.Job {
	return &matcher.Job{ID: "probe", Title: f.Keywords, Company: "Probe", VisaTypes: f.VisaTypes, Workplace: "remote", Locations: f.Locations}
}

func containsID(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (s *stack) publish(subject string, body string) {
	s.t.Helper()
	if _, err := s.js.Publish(context.Background(), subject, []byte(body)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) publishJob(subject string, j matcher.Job) {
	s.t.Helper()
	b, err := json.Marshal(j)
	if err != nil {
		s.t.Fatal(err)
	}
	s.publish(subject, string(b))
}

// waitMail waits for the nth email to addr and returns all of them.
func (s *stack) waitMail(addr string, n int) []smtpsink.Message {
	s.t.Helper()
	testenv.Eventually(s.t, 15*time.Second, func() bool { return len(s.sink.To(addr)) >= n },
		"want %d emails to %s, got %d", n, addr, len(s.sink.To(addr)))
	return s.sink.To(addr)
}

// mailsWith counts the emails to addr that list a job (by its URL).
func (s *stack) mailsWith(addr, jobURL string) int {
	n := 0
	for _, m := range s.sink.To(addr) {
		if strings.Contains(m.Text, jobURL) {
			n++
		}
	}
	return n
}

func job(id, title string, visas ...string) matcher.Job {
	return matcher.Job{ID: id, Title: title, Company: "Starbucks", Locations: []string{"Seattle, WA, US"},
		Workplace: "hybrid", VisaTypes: visas, URL: "https://jobs.example.com/" + id,
		Salary: &matcher.Salary{Min: 115000, Max: 160000, Currency: "USD", Period: "year"}}
}

func TestMatchingJobArrivesAsEmailAndNonMatchingGetsNothing(t *testing.T) {
	s := startStack(t, stackOpts{})
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"H-1B"}})
	s.subscribe("bob@example.com", matcher.Filter{Keywords: "data scientist"})

	s.publishJob("jobs.created", job("sbux-1042", "Backend Engineer II", "H-1B", "TN"))
	// A later job for bob proves bob's silence about the first one.
	s.publishJob("jobs.created", job("sbux-2000", "Senior Data Scientist"))

	ada := s.waitMail("ada@example.com", 1)
	m := ada[0]
	if want := `1 new "backend engineer" job sponsoring H-1B`; m.Subject != want {
		t.Errorf("subject: got %q, want %q", m.Subject, want)
	}
	if len(m.To) != 1 || m.To[0] != "ada@example.com" {
		t.Errorf("recipient: got %v, want [ada@example.com]", m.To)
	}
	for _, part := range []struct{ name, body string }{{"text", m.Text}, {"html", m.HTML}} {
		for _, want := range []string{"Backend Engineer II", "Starbucks", "Seattle", "https://jobs.example.com/sbux-1042"} {
			if !strings.Contains(part.body, want) {
				t.Errorf("%s part: missing %q in:\n%s", part.name, want, part.body)
			}
		}
	}
	if got, want := m.Header.Get("List-Unsubscribe"), "<"+s.env["JOBALERT_PUBLIC_URL"]+"/v1/unsubscribe?token="; !strings.HasPrefix(got, want) {
		t.Errorf("List-Unsubscribe: got %q, want %s...>", got, want)
	}
	if got := m.Header.Get("List-Unsubscribe-Post"); got != "List-Unsubscribe=One-Click" {
		t.Errorf("List-Unsubscribe-Post: got %q, want List-Unsubscribe=One-Click", got)
	}
	bob := s.waitMail("bob@example.com", 1)
	if s.mailsWith("bob@example.com", "sbux-1042") != 0 || len(bob) != 1 {
		t.Errorf("bob: got %d emails (%d with the backend job), want 1 without it", len(bob), s.mailsWith("bob@example.com", "sbux-1042"))
	}
}

// crashBeforeAck records durably, then fails the first time, as a process
// that dies after the write and before the ack: NATS redelivers.
type crashBeforeAck struct {
	consumer.Recorder
	crashed atomic.Bool
}

func (c *crashBeforeAck) Record(ctx context.Context, batch []jobevent.Matched) error {
	if err := c.Recorder.Record(ctx, batch); err != nil {
		return err
	}
	if c.crashed.CompareAndSwap(false, true) {
		return errors.New("simulated crash before ack")
	}
	return nil
}

func TestRedeliveredEventDoesNotSendTwice(t *testing.T) {
	var rec *crashBeforeAck
	s := startStack(t, stackOpts{wrapRecorder: func(r consumer.Recorder) consumer.Recorder {
		rec = &crashBeforeAck{Recorder: r}
		return rec
	}})
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend"})
	s.publishJob("jobs.created", job("j-redeliver", "Backend Engineer"))
	s.waitMail("ada@example.com", 1)
	// Wait for the redelivery to be acked, then prove quiet with a later job.
	testenv.Eventually(t, 10*time.Second, func() bool { return rec.crashed.Load() && s.pendingAcks() == 0 }, "redelivery not acked")
	s.publishJob("jobs.created", job("j-after", "Backend Developer"))
	testenv.Eventually(t, 10*time.Second, func() bool { return s.mailsWith("ada@example.com", "j-after") == 1 }, "later job not delivered")
	if got := s.mailsWith("ada@example.com", "j-redeliver"); got != 1 {
		t.Fatalf("emails listing the redelivered job: got %d, want 1", got)
	}
}

func (s *stack) pendingAcks() int {
	c, err := s.js.Consumer(context.Background(), "JOBS", "jobalert")
	if err != nil {
		return -1
	}
	info, err := c.Info(context.Background())
	if err != nil {
		return -1
	}
	// The consumer's pending count follows the stream asynchronously, so
	// just after a publish it can read 0: the stream's last sequence, set
	// before the publish returned, against the ack floor does not lag.
	st, err := s.js.Stream(context.Background(), "JOBS")
	if err != nil {
		return -1
	}
	n := info.NumAckPending + int(info.NumPending)
	if behind := int(st.CachedInfo().State.LastSeq - info.AckFloor.Stream); behind > n {
		n = behind
	}
	return n
}

func TestUpdatedJobDoesNotRealert(t *testing.T) {
	s := startStack(t, stackOpts{})
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend"})
	s.publishJob("jobs.created", job("j-upd", "Backend Engineer"))
	s.waitMail("ada@example.com", 1)
	s.publishJob("jobs.updated", job("j-upd", "Backend Engineer (updated)"))
	s.publishJob("jobs.created", job("j-next", "Backend Developer"))
	testenv.Eventually(t, 10*time.Second, func() bool { return s.mailsWith("ada@example.com", "j-next") == 1 }, "later job not delivered")
	if got := s.mailsWith("ada@example.com", "j-upd"); got != 1 {
		t.Fatalf("emails listing the updated job: got %d, want 1", got)
	}
}

func TestClosedJobWithinWindowIsNotSent(t *testing.T) {
	s := startStack(t, stackOpts{window: "2s"})
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend"})
	s.publishJob("jobs.created", job("j-closed", "Backend Engineer"))
	s.publish("jobs.closed", `{"id":"j-closed"}`)
	s.publishJob("jobs.created", job("j-open", "Backend Developer"))
	m := s.waitMail("ada@example.com", 1)
	if len(m) != 1 || !strings.Contains(m[0].Text, "j-open") || strings.Contains(m[0].Text, "j-closed") {
		t.Fatalf("got %d emails, first:\n%s\nwant one listing j-open and not j-closed", len(m), m[0].Text)
	}
}

func TestPoisonEventGoesToDLQAndStreamKeepsFlowing(t *testing.T) {
	s := startStack(t, stackOpts{})
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend"})
	s.publish("jobs.created", `{"id":"bad-1","company":"Acme"}`) // no title
	s.publish("jobs.created", `not json at all`)
	s.publishJob("jobs.created", job("j-good", "Backend Engineer"))
	testenv.Eventually(t, 10*time.Second, func() bool { return s.mailsWith("ada@example.com", "j-good") == 1 }, "good job after poison not delivered")

	dlq, err := s.js.Stream(context.Background(), "JOBS_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		info, err := dlq.Info(context.Background())
		return err == nil && info.State.Msgs == 2
	}, "want 2 messages in JOBS_DLQ")
	msg, err := dlq.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if reason := msg.Header.Get(consumer.HeaderError); !strings.Contains(reason, "title") {
		t.Errorf("DLQ reason: got %q, want it to name the missing title", reason)
	}
}

func TestSMTP421DelaysButDoesNotLose(t *testing.T) {
	s := startStack(t, stackOpts{})
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend"})
	s.sink.FailUntil(smtpsink.StageMail, 421, time.Now().Add(1500*time.Millisecond))
	s.publishJob("jobs.created", job("j-421", "Backend Engineer"))
	s.waitMail("ada@example.com", 1)
	if st := s.sink.Stats(); st.Rejected == 0 {
		t.Errorf("sink stats: got %+v, want some 421 rejections before the delivery", st)
	}
	s.publishJob("jobs.created", job("j-after-421", "Backend Developer"))
	testenv.Eventually(t, 10*time.Second, func() bool { return s.mailsWith("ada@example.com", "j-after-421") == 1 }, "later job not delivered")
	if got := s.mailsWith("ada@example.com", "j-421"); got != 1 {
		t.Fatalf("emails listing the job: got %d, want exactly 1", got)
	}
}
