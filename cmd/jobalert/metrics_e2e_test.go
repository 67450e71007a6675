package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
)

// exposition is one scrape of /metrics, parsed from the text format.
type exposition struct {
	types  map[string]string  // family -> counter, gauge, histogram, ...
	values map[string]float64 // `name{a="x",b="y"}` (labels sorted, as printed) -> value
	labels map[string][]string
}

func scrape(t *testing.T, url string) exposition {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: got %d %s, want 200", url, resp.StatusCode, b)
	}
	e := exposition{types: map[string]string{}, values: map[string]float64{}, labels: map[string][]string{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	label := regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			e.types[f[2]] = f[3]
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series := line[:i]
		e.values[series] = v
		name, rest, _ := strings.Cut(series, "{")
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && e.types[base] == "histogram" {
				name = base
			}
		}
		for _, m := range label.FindAllStringSubmatch(rest, -1) {
			if m[1] != "le" && !slices.Contains(e.labels[name], m[1]) {
				e.labels[name] = append(e.labels[name], m[1])
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return e
}

// get returns the value of one series, given as name and label pairs.
func (e exposition) get(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	key := name
	if len(labels) > 0 {
		pairs := make([]string, 0, len(labels)/2)
		for i := 0; i < len(labels); i += 2 {
			pairs = append(pairs, labels[i]+"="+strconv.Quote(labels[i+1]))
		}
		sort.Strings(pairs)
		key += "{" + strings.Join(pairs, ",") + "}"
	}
	v, ok := e.values[key]
	if !ok {
		t.Errorf("metrics: %s missing", key)
	}
	return v
}

// series counts the series of a counter or gauge family.
func (e exposition) series(name string) int {
	n := 0
	for k := range e.values {
		if base, _, _ := strings.Cut(k, "{"); base == name {
			n++
		}
	}
	return n
}

// documentedMetrics reads docs/metrics.md's table: family -> its labels.
func documentedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	row := regexp.MustCompile("^\\| `(jobalert_[a-z0-9_]+)` \\| [^|]+ \\|([^|]*)\\|")
	for _, line := range strings.Split(string(b), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range strings.Split(m[2], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		out[m[1]] = labels
	}
	if len(out) < 40 {
		t.Fatalf("docs/metrics.md: got %d metric rows, want the whole table", len(out))
	}
	return out
}

// A whole run through every role, then /metrics on the metrics listener:
// every documented family is there with its labels and nothing else, and
// the counts are those of the run.
func TestMetricsAfterAnEndToEndRun(t *testing.T) {
	s := startStack(t, stackOpts{metrics: true})
	base := s.env["JOBALERT_PUBLIC_URL"]
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend engineer"})

	if r := post(t, base+"/v1/subscriptions", "application/json",
		`{"email":"bob@example.com","filter":{"keywords":"data"},"frequency":"daily","timezone":"UTC"}`); r.StatusCode != http.StatusCreated {
		t.Fatalf("sign-up: got %d %s, want 201", r.StatusCode, r.body)
	}
	if r := get(t, base+"/no-such-page"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /no-such-page: got %d, want 404", r.StatusCode)
	}
	if r := get(t, base+"/metrics"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("public /metrics with a metrics listener: got %d, want 404", r.StatusCode)
	}
	s.publishJob("jobs.created", job("m-1", "Backend Engineer"))
	s.publish("jobs.created", `not json`)
	s.publish("jobs.closed", `{"id":"m-0"}`)
	s.waitMail("ada@example.com", 1)
	s.waitMail("bob@example.com", 1) // the confirmation
	testenv.Eventually(t, 10*time.Second, func() bool { return s.pendingAcks() == 0 }, "events not all acked")
	// The digest is marked sent right after the 250.
	testenv.Eventually(t, 5*time.Second, func() bool {
		return scrape(t, s.metricsURL+"/metrics").values[`jobalert_digests_total{outcome="sent"}`] == 1
	}, "digest not counted as sent")

	e := scrape(t, s.metricsURL+"/metrics")
	docs := documentedMetrics(t)
	for name, labels := range docs {
		if _, ok := e.types[name]; !ok {
			t.Errorf("documented %s: missing from /metrics", name)
			continue
		}
		got := slices.Clone(e.labels[name])
		sort.Strings(got)
		want := slices.Clone(labels)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: got labels %v, want %v (docs/metrics.md)", name, got, want)
		}
	}
	for name := range e.types {
		if _, ok := docs[name]; strings.HasPrefix(name, "jobalert_") && !ok {
			t.Errorf("%s: in /metrics, missing from docs/metrics.md", name)
		}
	}

	// Every label value known in advance has its series from the start.
	for name, want := range map[string]int{
		"jobalert_consumer_events_total":      4 * 3,
		"jobalert_consumer_poison_total":      2,
		"jobalert_digests_total":              4,
		"jobalert_emails_total":               4 * 5,
		"jobalert_webhook_attempts_total":     5,
		"jobalert_webhook_dead_letters_total": 3,
		"jobalert_nats_errors_total":          4,
		"jobalert_http_requests_total":        (len(s.app.routesForTest()) + 1) * 4,
		"jobalert_stream_messages":            2,
		"jobalert_http_connections":           2,
	} {
		if got := e.series(name); got != want {
			t.Errorf("%s: got %d series, want %d", name, got, want)
		}
	}

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"jobalert_consumer_events_total", []string{"kind", "created", "outcome", "recorded"}, 1},
		{"jobalert_consumer_events_total", []string{"kind", "created", "outcome", "poison"}, 1},
		{"jobalert_consumer_events_total", []string{"kind", "closed", "outcome", "recorded"}, 1},
		{"jobalert_consumer_events_total", []string{"kind", "updated", "outcome", "recorded"}, 0},
		{"jobalert_consumer_poison_total", []string{"cause", "decode"}, 1},
		{"jobalert_consumer_dlq_published_total", nil, 1},
		{"jobalert_consumer_matches_total", nil, 1},
		{"jobalert_consumer_matches_per_job_count", nil, 1},
		{"jobalert_consumer_matches_per_job_sum", nil, 1},
		{"jobalert_consumer_match_duration_seconds_count", nil, 1},
		{"jobalert_consumer_record_errors_total", nil, 0},
		{"jobalert_consumer_pending", nil, 0},
		{"jobalert_consumer_ack_pending", nil, 0},
		{"jobalert_consumer_backlog_age_seconds", nil, 0},
		{"jobalert_stream_messages", []string{"stream", "JOBS"}, 3},
		{"jobalert_stream_messages", []string{"stream", "JOBS_DLQ"}, 1},
		{"jobalert_index_filters", nil, 1},
		{"jobalert_index_build_duration_seconds_count", nil, 1},
		{"jobalert_digests_total", []string{"outcome", "sent"}, 1},
		{"jobalert_emails_total", []string{"kind", "alert", "outcome", "sent"}, 1},
		{"jobalert_emails_total", []string{"kind", "confirmation", "outcome", "sent"}, 1},
		{"jobalert_emails_total", []string{"kind", "digest", "outcome", "sent"}, 0},
		{"jobalert_smtp_send_duration_seconds_count", nil, 2},
		{"jobalert_digests_due", nil, 0},
		{"jobalert_outbox_digests", nil, 0},
		{"jobalert_pending_items", nil, 0},
		{"jobalert_digests_scheduled", nil, 0},
		{"jobalert_webhook_queued", nil, 0},
		{"jobalert_webhook_circuits_open", nil, 0},
		{"jobalert_http_requests_total", []string{"route", "POST /v1/subscriptions", "class", "2xx"}, 1},
		{"jobalert_http_requests_total", []string{"route", "other", "class", "4xx"}, 1},
		{"jobalert_http_requests_total", []string{"route", "GET /metrics", "class", "4xx"}, 1},
		{"jobalert_http_request_duration_seconds_count", []string{"route", "POST /v1/subscriptions"}, 1},
		{"jobalert_http_connections_max", nil, 1024},
		{"jobalert_redis_errors_total", nil, 0},
		{"jobalert_ready", nil, 1},
		{"jobalert_build_info", []string{"version", version, "go_version", runtime.Version()}, 1},
	} {
		if got := e.get(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := get(t, s.metricsURL+p); r.StatusCode != http.StatusOK {
			t.Errorf("metrics listener %s: got %d %s, want 200", p, r.StatusCode, r.body)
		}
	}
}

func (a *app) routesForTest() []string {
	srv, err := a.newAPI()
	if err != nil {
		panic(err)
	}
	return srv.Routes()
}

// rawConn is one connection to the public listener from a chosen loopback
// address, for the connection bounds.
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialFrom(t *testing.T, addr, from string) *rawConn {
	t.Helper()
	c := testenv.DialFrom(t, addr, from)
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) status() int {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.t.Fatalf("reading an answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// With caps of 20 connections and 5 per address, 20 connections busy
// sending their requests fill the public listener: a 6th from one of
// their addresses is refused with 429, one from elsewhere waits, and the
// probes on the metrics listener keep answering. When one busy connection
// ends its request and goes idle, it makes room for the waiting one.
func TestHealthAnswersWhilePublicListenerIsFull(t *testing.T) {
	s := startStack(t, stackOpts{metrics: true, env: map[string]string{
		"JOBALERT_HTTP_MAX_CONNS": "20", "JOBALERT_HTTP_MAX_CONNS_PER_IP": "5",
	}})
	addr := s.env["JOBALERT_HTTP_ADDR"]
	var busy []*rawConn
	for i := range 20 {
		c := dialFrom(t, addr, fmt.Sprintf("127.0.0.%d", 2+i/5))
		c.write("GET /healthz HTTP/1.1\r\nHost: jobalert\r\n") // the request's end is still to come
		busy = append(busy, c)
	}
	stats := func() string { return fmt.Sprintf("%+v", s.app.limiter.Stats()) }
	testenv.Eventually(t, 5*time.Second, func() bool { return s.app.limiter.Stats().Open == 20 }, "want 20 open, got %s", stats)

	sixth := dialFrom(t, addr, "127.0.0.2")
	sixth.write("GET /healthz HTTP/1.1\r\nHost: jobalert\r\n\r\n")
	if code := sixth.status(); code != http.StatusTooManyRequests {
		t.Fatalf("a 6th connection from 127.0.0.2: got %d, want 429", code)
	}
	waiting := dialFrom(t, addr, "127.0.0.9")
	waiting.write("GET /healthz HTTP/1.1\r\nHost: jobalert\r\n\r\n")
	testenv.Eventually(t, 5*time.Second, func() bool { return s.app.limiter.Stats().Waits == 1 }, "want one waiting connection, got %s", stats)

	for _, p := range []string{"/healthz", "/readyz"} {
		if r := get(t, s.metricsURL+p); r.StatusCode != http.StatusOK {
			t.Fatalf("metrics listener %s with the public one full: got %d %s, want 200", p, r.StatusCode, r.body)
		}
	}
	e := scrape(t, s.metricsURL+"/metrics")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"jobalert_http_connections", []string{"state", "open"}, 20},
		{"jobalert_http_connections_max", nil, 20},
		{"jobalert_http_connections_rejected_total", nil, 1},
		{"jobalert_http_connection_waits_total", nil, 1},
		{"jobalert_http_connections_idle_closed_total", nil, 0},
	} {
		if got := e.get(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v: got %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// One busy connection finishes its request: answered, then idle, then
	// closed to let the waiting one in.
	busy[0].write("\r\n")
	if code := busy[0].status(); code != http.StatusOK {
		t.Fatalf("the finished request: got %d, want 200", code)
	}
	if code := waiting.status(); code != http.StatusOK {
		t.Fatalf("the waiting connection: got %d, want 200", code)
	}
	if st := s.app.limiter.Stats(); st.Peak != 20 || st.IdleClosed != 1 {
		t.Fatalf("connections: got %s, want never more than 20 open, 1 idle closed", stats())
	}
}
