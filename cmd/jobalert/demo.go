package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/smtpsink"
	"github.com/jobalert/jobalert/store"
)

// runDemo runs everything on this machine: an embedded JetStream server,
// Redis (a redis-server child, else an in-process stand-in), an SMTP sink
// with a web inbox, and the service with all roles; it seeds subscribers
// and jobs, prints the URLs, and stops cleanly on Ctrl-C.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", "demo\n\nRuns everything on this machine: embedded NATS, a throw-away Redis, an SMTP sink\nwith a web inbox, the service, and seeded subscribers and jobs.", stdout, stderr)
	if err := parseFlags(fs, args, 0, stdout); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "jobalert-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: dir + "/nats", NoSigs: true, NoLog: true})
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("embedded NATS did not start in 10s")
	}

	redisURL, redisKind, stopRedis, err := demoRedis(dir)
	if err != nil {
		return err
	}
	defer stopRedis()

	sink, err := smtpsink.New(smtpsink.Options{})
	if err != nil {
		return fmt.Errorf("SMTP sink: %w", err)
	}
	defer sink.Close()
	inboxLn, err := listenLoopback(8025)
	if err != nil {
		return err
	}
	inbox := &http.Server{Handler: sink.InboxHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = inbox.Serve(inboxLn) }()
	defer inbox.Close()

	apiLn, err := listenLoopback(8080)
	if err != nil {
		return err
	}
	publicURL := "http://" + apiLn.Addr().String()
	adminToken := randomHex(16)
	env := map[string]string{
		"JOBALERT_NATS_URL":              ns.ClientURL(),
		"JOBALERT_REDIS_URL":             redisURL,
		"JOBALERT_REDIS_PREFIX":          "demo:",
		"JOBALERT_SMTP_HOST":             sink.Host(),
		"JOBALERT_SMTP_PORT":             strconv.Itoa(sink.Port()),
		"JOBALERT_SMTP_TLS":              "none",
		"JOBALERT_MAIL_FROM":             "jobalert demo <alerts@jobalert.test>",
		"JOBALERT_PUBLIC_URL":            publicURL,
		"JOBALERT_HTTP_ADDR":             apiLn.Addr().String(),
		"JOBALERT_SECRET":                randomHex(32),
		"JOBALERT_ADMIN_TOKEN":           adminToken,
		"JOBALERT_INSTANT_WINDOW":        "10s",
		"JOBALERT_WEBHOOK_ALLOW_PRIVATE": "true",
	}
	cfg, err := config.Load(func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if getenv != nil {
			return getenv(k)
		}
		return os.Getenv(k)
	}, true)
	if err != nil {
		return fmt.Errorf("demo configuration:\n%w", err)
	}
	a, err := newApp(ctx, cfg, roles{consumer: true, notifier: true, api: true}, log, appDeps{listener: apiLn})
	if err != nil {
		return err
	}
	runErr := make(chan error, 1)
	go func() { runErr <- a.Run(ctx) }()

	if err := seedDemo(ctx, a, ns.ClientURL()); err != nil {
		log.Error("seeding the demo failed", "err", err)
	}
	fmt.Fprintf(stdout, `
jobalert demo is running (Ctrl-C stops it)

  subscribe page   %s/
  web inbox        http://%s/      (every email the service sends lands here)
  API              POST %s/v1/subscriptions (JSON; docs/openapi.yaml)
  admin token      %s
  metrics          %s/metrics
  NATS             %s (embedded JetStream)
  Redis            %s (%s)

Seeded 4 subscribers and 12 jobs; instant alerts go out after a 10s window.
Publish more with:  JOBALERT_NATS_URL=%s go run ./cmd/jobalert publish FILE.jsonl
`, publicURL, inboxLn.Addr(), publicURL, adminToken, publicURL, ns.ClientURL(), redisURL, redisKind, ns.ClientURL())
	return <-runErr
}

// demoRedis starts a redis-server child on a free port when the binary is
// installed, and an in-process Redis-compatible server otherwise.
func demoRedis(dir string) (url, kind string, stop func(), err error) {
	if bin, lerr := exec.LookPath("redis-server"); lerr == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			return "", "", nil, fmt.Errorf("start redis-server: %w", err)
		}
		url = fmt.Sprintf("redis://127.0.0.1:%d/0", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				return "", "", nil, errors.New("redis-server did not start in 10s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return url, "redis-server child process " + bin, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, nil
	}
	m, err := miniredis.Run()
	if err != nil {
		return "", "", nil, fmt.Errorf("in-process redis: %w", err)
	}
	return "redis://" + m.Addr() + "/0", "in-process Redis-compatible server (miniredis); install redis-server for the real one", m.Close, nil
}

// listenLoopback listens on the preferred loopback port, or any free one.
func listenLoopback(preferred int) (net.Listener, error) {
	if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", preferred)); err == nil {
		return ln, nil
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// demoSubscribers are confirmed subscribers with the filters people set.
var demoSubscribers = []store.Subscription{
	{Email: "ada@example.com", Frequency: "instant", Timezone: "America/Los_Angeles", SendHour: 8,
		Filter: matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"H-1B"}, Locations: []string{"Seattle, WA", "Remote"}, MinSalary: 140000}},
	{Email: "ben@example.com", Frequency: "instant", Timezone: "America/Toronto", SendHour: 9,
		Filter: matcher.Filter{Keywords: "software engineer", VisaTypes: []string{"TN"}, ExcludeKeywords: []string{"intern"}}},
	{Email: "chen@example.com", Frequency: "instant", Timezone: "America/New_York", SendHour: 8,
		Filter: matcher.Filter{Keywords: "machine learning", VisaTypes: []string{"O-1", "H-1B"}, Seniority: []string{"senior", "staff"}}},
	{Email: "dana@example.com", Frequency: "daily", Timezone: "Europe/Berlin", SendHour: 8,
		Filter: matcher.Filter{Keywords: "frontend", Locations: []string{"Remote"}}},
}

// demoJobs are realistic postings; most sponsor visas.
var demoJobs = []string{
	`{"id":"sbux-1042","title":"Backend Engineer II","company":"Starbucks","locations":["Seattle, WA, US"],"workplace":"hybrid","visa_types":["H-1B","TN","O-1A"],"salary":{"min":115000,"max":160000,"currency":"USD","period":"year"},"seniority":"mid","tags":["java","python","aws"],"url":"https://careers.example.com/sbux-1042"}`,
	`{"id":"stripe-881","title":"Senior Backend Engineer, Payments","company":"Stripe","locations":["Seattle, WA, US","San Francisco, CA, US"],"workplace":"remote","visa_types":["H-1B","E-3"],"salary":{"min":180000,"max":250000,"currency":"USD"},"seniority":"senior","tags":["ruby","go"],"url":"https://careers.example.com/stripe-881"}`,
	`{"id":"shopify-77","title":"Software Engineer, Checkout","company":"Shopify","locations":["Ottawa, ON, CA"],"workplace":"remote","visa_types":["TN"],"salary":{"min":140000,"max":170000,"currency":"CAD"},"seniority":"mid","url":"https://careers.example.com/shopify-77"}`,
	`{"id":"amzn-5531","title":"Software Engineer Intern","company":"Amazon","locations":["Austin, TX, US"],"workplace":"onsite","visa_types":["TN","OPT"],"salary":{"max":55,"period":"hour"},"seniority":"intern","url":"https://careers.example.com/amzn-5531"}`,
	`{"id":"nvda-310","title":"Senior Machine Learning Engineer","company":"NVIDIA","locations":["Santa Clara, CA, US"],"workplace":"hybrid","visa_types":["H-1B","O-1"],"salary":{"min":200000,"max":310000},"seniority":"senior","tags":["pytorch","cuda"],"url":"https://careers.example.com/nvda-310"}`,
	`{"id":"hf-22","title":"Staff Machine Learning Engineer","company":"Hugging Face","locations":["New York, NY, US"],"workplace":"remote","visa_types":["O-1"],"seniority":"staff","url":"https://careers.example.com/hf-22"}`,
	`{"id":"figma-19","title":"Frontend Engineer","company":"Figma","locations":["Remote, US"],"workplace":"remote","visa_types":["H-1B"],"salary":{"min":160000,"max":210000},"seniority":"mid","tags":["typescript","react"],"url":"https://careers.example.com/figma-19"}`,
	`{"id":"ms-4410","title":"Back-End Engineer","company":"Microsoft","locations":["Redmond, WA, US"],"workplace":"onsite","visa_types":["h1b","green card"],"salary":{"min":130000,"max":175000},"seniority":"mid","url":"https://careers.example.com/ms-4410"}`,
	`{"id":"plaid-6","title":"Backend Engineer","company":"Plaid","locations":["Salt Lake City, UT, US"],"workplace":"onsite","salary":{"min":150000,"max":190000},"url":"https://careers.example.com/plaid-6"}`,
	`{"id":"atl-93","title":"Software Engineer, Jira Cloud","company":"Atlassian","locations":["Austin, TX, US"],"workplace":"remote","visa_types":["TN","E-3","H-1B"],"seniority":"mid","url":"https://careers.example.com/atl-93"}`,
	`{"id":"dd-204","title":"Product Designer","company":"DoorDash","locations":["New York, NY, US"],"workplace":"hybrid","visa_types":["H-1B"],"url":"https://careers.example.com/dd-204"}`,
	`{"id":"vercel-12","title":"Senior Frontend Engineer","company":"Vercel","locations":["Remote"],"workplace":"remote","salary":{"min":170000,"max":220000},"seniority":"senior","url":"https://careers.example.com/vercel-12"}`,
}

// seedDemo creates the demo subscribers (already confirmed) and publishes
// the demo jobs, as a job board would.
func seedDemo(ctx context.Context, a *app, natsURL string) error {
	now := time.Now()
	for i := range demoSubscribers {
		sub := demoSubscribers[i]
		sub.Status = store.StatusActive
		sub.ConfirmedAt = now
		if err := a.store.CreateSubscription(ctx, &sub, now); err != nil {
			return err
		}
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// Wait for the index to hold the subscribers, as a real board's jobs
	// would arrive long after people subscribed.
	deadline := time.Now().Add(10 * time.Second)
	for a.index.Len() < len(demoSubscribers) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_, err = consumer.Publish(ctx, js, strings.NewReader(strings.Join(demoJobs, "\n")), "jobs.created", nil)
	return err
}
