package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/internal/testenv"
)

func TestShutdownBudgetAddsUpToTheTimeout(t *testing.T) {
	for _, total := range []time.Duration{25 * time.Second, 10 * time.Second, 7 * time.Millisecond} {
		b := splitShutdown(total)
		if sum := b.HTTP + b.Intake + b.InFlight + b.Close; sum != total {
			t.Errorf("%v: steps add up to %v", total, sum)
		}
		if b.grace() != b.Intake+b.InFlight {
			t.Errorf("%v: grace %v, want intake + in-flight", total, b.grace())
		}
	}
	if b := splitShutdown(25 * time.Second); b != (shutdownBudget{HTTP: 3750 * time.Millisecond, Intake: 1250 * time.Millisecond, InFlight: 15 * time.Second, Close: 5 * time.Second}) {
		t.Errorf("default split: got %+v, want the table of docs/operations.md", b)
	}
}

func TestCloseStepsReportEveryErrorAndTheBudget(t *testing.T) {
	var (
		mu  sync.Mutex
		ran []string
	)
	step := func(name string, err error, hang bool) closeStep {
		return closeStep{name, func(ctx context.Context) error {
			mu.Lock()
			ran = append(ran, name)
			mu.Unlock()
			if hang {
				time.Sleep(time.Second)
			}
			return err
		}}
	}
	err := closeSteps(100*time.Millisecond, []closeStep{
		step("smtp", errors.New("quit: EOF"), false),
		step("redis", nil, false),
		step("nats", nil, true),
		step("after", nil, false),
	})
	want := []string{
		"close smtp: quit: EOF",
		"close nats: did not close within the close budget of 100ms",
		"close after: not closed: the close budget of 100ms ran out",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("got %v, want:\n%s", err, strings.Join(want, "\n"))
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(ran, ",") != "smtp,redis,nats" {
		t.Fatalf("ran %v, want smtp, redis, nats in order and nothing after the budget", ran)
	}
}

// logLines collects log lines; at the line containing mark, it runs
// onMark (to look at the state of things at that moment).
type logLines struct {
	mu     sync.Mutex
	lines  []string
	mark   string
	onMark func()
}

func (l *logLines) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l.mark != "" && strings.Contains(line, l.mark) && l.onMark != nil {
			l.onMark()
		}
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
	}
	return len(p), nil
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// index of the first line containing s, -1 if none.
func (l *logLines) index(s string) int {
	for i, line := range l.all() {
		if strings.Contains(line, s) {
			return i
		}
	}
	return -1
}

// A clean shutdown logs "stopped cleanly" last, once SMTP, Redis and NATS
// are closed (NATS drained: the connection is closed, not draining).
func TestShutdownLogsStoppedCleanlyAfterTheLastClose(t *testing.T) {
	var (
		natsClosed, redisClosed bool
		logs                    = &logLines{mark: "stopped cleanly"}
		s                       *stack
	)
	logs.onMark = func() {
		natsClosed = s.app.nc.IsClosed()
		redisClosed = errors.Is(s.app.rdb.Ping(context.Background()).Err(), redis.ErrClosed)
	}
	s = startStack(t, stackOpts{log: logs})
	if err := s.shutdown(); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	lines := logs.all()
	if last := lines[len(lines)-1]; !strings.Contains(last, "stopped cleanly") {
		t.Fatalf("last log line: got %q, want stopped cleanly; log:\n%s", last, strings.Join(lines, "\n"))
	}
	if !natsClosed || !redisClosed {
		t.Errorf("at \"stopped cleanly\": NATS closed %v, Redis closed %v; want both closed before the last line", natsClosed, redisClosed)
	}
	order := []string{"msg=\"shutting down\"", "msg=\"stopped consuming\"", "msg=\"stopped cleanly\""}
	for i := 1; i < len(order); i++ {
		if a, b := logs.index(order[i-1]), logs.index(order[i]); a < 0 || b < 0 || a > b {
			t.Errorf("log order: %s at %d, %s at %d; want the first before the second", order[i-1], a, order[i], b)
		}
	}
	if i := logs.index("shutting down"); i < 0 || !strings.Contains(lines[i], "http=3.75s intake=1.25s in_flight=15s close=5s") {
		t.Errorf("shutting down line: got %q, want the budget split", lines[max(i, 0)])
	}
}

// A close that fails is reported: Run returns it, and the last line says
// the stop was not clean.
func TestShutdownReportsAFailedClose(t *testing.T) {
	logs := &logLines{}
	s := startStack(t, stackOpts{log: logs})
	s.stop = func() {}
	s.ns.Shutdown()
	testenv.Eventually(t, 5*time.Second, func() bool { return s.app.nc.Status() == nats.RECONNECTING }, "NATS connection not reconnecting")
	err := s.shutdown()
	if err == nil || !strings.Contains(err.Error(), "close NATS: not connected (reconnecting): closed without draining") {
		t.Fatalf("Run: got %v, want the NATS close named", err)
	}
	lines := logs.all()
	if last := lines[len(lines)-1]; !strings.Contains(last, `msg="stopped with errors"`) || !strings.Contains(last, "close NATS") {
		t.Fatalf("last log line: got %q, want stopped with errors naming the NATS close", last)
	}
	if logs.index("stopped cleanly") >= 0 {
		t.Fatal(`logged "stopped cleanly" after a failed close`)
	}
}

// startupEnv is a valid configuration with the given overrides.
func startupEnv(t *testing.T, over map[string]string) map[string]string {
	env := map[string]string{
		"JOBALERT_SECRET":    "0123456789abcdef0123456789abcdef",
		"JOBALERT_HTTP_ADDR": "127.0.0.1:0",
		"JOBALERT_LOG_LEVEL": "warn",
	}
	for k, v := range over {
		env[k] = v
	}
	return env
}

// A start-up failure ends the program with exit status 1 and one line
// naming the part and the cause, never a panic. This runs the real main
// in a child process (the test binary itself).
func TestStartupFailureIsOneLineAndExitStatus1(t *testing.T) {
	if os.Getenv("JOBALERT_TEST_RUN_MAIN") == "1" {
		os.Args = []string{"jobalert", "serve"}
		main()
		return
	}
	redisURL := "redis://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) + "/0" // nothing listens
	last := runMainFailing(t, "TestStartupFailureIsOneLineAndExitStatus1", startupEnv(t, map[string]string{"JOBALERT_REDIS_URL": redisURL}))
	want := "jobalert: start-up: redis at " + redisURL + ": "
	if !strings.HasPrefix(last, want) || !strings.Contains(last, "connection refused") {
		t.Errorf("last line: got %q, want %q... connection refused", last, want)
	}
}

// runMainFailing runs `jobalert serve` in a child process (this test
// binary, running only the test named test, which calls main when
// JOBALERT_TEST_RUN_MAIN is set) with env. It fails the test unless the
// program exits with status 1 without a panic, and returns the last line
// it wrote to stderr.
func runMainFailing(t *testing.T, test string, env map[string]string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), "JOBALERT_TEST_RUN_MAIN=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: got %v, want status 1; stderr:\n%s", err, stderr.String())
	}
	out := strings.TrimRight(stderr.String(), "\n")
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Errorf("stderr shows a panic:\n%s", out)
	}
	lines := strings.Split(out, "\n")
	return lines[len(lines)-1]
}

// NATS that refuses connections fails a consumer's start, naming NATS
// and the cause, with nothing left open and no panic (the close of a
// half-built app used to dereference nil).
func TestStartupFailsWhenNATSRefuses(t *testing.T) {
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	env := startupEnv(t, map[string]string{"JOBALERT_NATS_URL": natsURL, "JOBALERT_REDIS_URL": testenv.RedisURL(t)})
	cfg, err := config.Load(func(k string) string { return env[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	start := time.Now()
	a, err := newApp(context.Background(), cfg, roles{consumer: true, notifier: true, api: true}, log, appDeps{startupTimeout: 500 * time.Millisecond})
	if a != nil || err == nil {
		t.Fatalf("newApp: got %v, %v; want an error", a, err)
	}
	want := fmt.Sprintf("start-up: NATS at %s: not connected within 500ms: ", natsURL)
	// nats.go reports a refused first attempt as "no servers available",
	// later ones as the dial error.
	msg := err.Error()
	if !strings.HasPrefix(msg, want) || strings.Contains(msg, "\n") ||
		!(strings.Contains(msg, "connection refused") || strings.Contains(msg, "no servers available")) {
		t.Errorf("error: got %q, want one line %q... (no servers available|connection refused)", msg, want)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("start-up failure took %v, want about the start-up timeout", took)
	}
}

// A record lease that a Record call could outlive fails start-up, before
// anything waits for NATS.
func TestStartupFailsWhenTheRecordLeaseIsTooShort(t *testing.T) {
	natsURL := "nats://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)) // never reached
	env := startupEnv(t, map[string]string{"JOBALERT_NATS_URL": natsURL, "JOBALERT_REDIS_URL": testenv.RedisURL(t)})
	cfg, err := config.Load(func(k string) string { return env[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	log := testenv.Logger(t)
	_, err = newApp(context.Background(), cfg, roles{consumer: true}, log,
		appDeps{recordLease: time.Minute, recordTimeout: 90 * time.Second, startupTimeout: time.Minute})
	want := "start-up: consumer: store: the record lease (1m0s) must be longer than the record timeout (1m30s)"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("newApp: got %v, want %s...", err, want)
	}
}
