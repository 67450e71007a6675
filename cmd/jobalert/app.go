package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/feed"
	"github.com/jobalert/jobalert/channel/telegram"
	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/connect"
	"github.com/jobalert/jobalert/internal/connlimit"
	"github.com/jobalert/jobalert/internal/liveness"
	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/preview"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
	"github.com/jobalert/jobalert/webhook"
)

// appDeps are the knobs tests and the demo turn; the zero value is
// production.
type appDeps struct {
	listener   net.Listener  // HTTP listener; nil listens on cfg.HTTPAddr
	digestTick time.Duration // scheduler tick; 0 is the default
	retryBase  time.Duration // first SMTP retry delay; 0 is the default
	webhookCfg func(*webhook.Config)
	// wrapRecorder lets a test stand between the consumer and Redis, e.g.
	// to fail after the durable write as a crash before the ack would.
	wrapRecorder func(consumer.Recorder) consumer.Recorder
	// startupTimeout bounds each dependency check at start; 0 is
	// defaultStartupTimeout.
	startupTimeout time.Duration
	// recordLease and recordTimeout override store.Config.RecordLease and
	// consumer.Config.RecordTimeout; 0 keeps their defaults.
	recordLease, recordTimeout time.Duration
	// metricsListener is the metrics listener when cfg.MetricsAddr is
	// set; nil listens on cfg.MetricsAddr.
	metricsListener net.Listener
	// chatSleep replaces the chat senders' and the Telegram poller's
	// waits (rate limits, lease retries); nil sleeps.
	chatSleep channel.Sleep
	// telegramPoll overrides the Bot API long-poll timeout (getUpdates);
	// 0 is the bot's default.
	telegramPoll time.Duration
}

// app is one jobalert process: the roles it runs and what they share.
type app struct {
	cfg   *config.Config
	roles roles
	log   *slog.Logger
	reg   *prometheus.Registry
	m     *appMetrics

	budget shutdownBudget

	nc     *nats.Conn
	natsEv *natsEvents
	js     jetstream.JetStream
	rdb    redis.UniversalClient
	live   *liveness.Liveness // this process's liveness key (internal/liveness)
	store  *store.Redis
	index  *liveIndex
	recent *preview.Recent // the live preview's jobs (api role)

	// The chat channels and the feed (docs/channels.md).
	feeds    *feed.Store      // every role: the tap appends, the digests append, the API serves
	feedHTTP http.Handler     // GET /v1/feeds/<token>.atom (api role)
	feedTap  *feedTap         // between the consumer and the store (consumer role)
	tgBot    *telegram.Bot    // nil without JOBALERT_TELEGRAM_BOT_TOKEN
	tgPoller *telegram.Poller // /start and /stop (notifier role)
	tgLinks  *telegramLinks   // start links for the API (api role)

	signer   *token.Signer
	render   *notifier.Renderer
	mailer   *notifier.Mailer
	hooks    *webhook.Service
	digester *notifier.Digester
	consumer *consumer.Consumer
	http     *http.Server
	listener net.Listener
	// limiter is listener: the public listener's connection bounds.
	limiter *connlimit.Listener
	// metricsHTTP serves /metrics, /healthz and /readyz on
	// metricsListener when cfg.MetricsAddr is set.
	metricsHTTP     *http.Server
	metricsListener net.Listener

	indexLoaded atomic.Bool
}

// defaultStartupTimeout bounds each dependency check at start: Redis
// answering, NATS connected (consumer role).
const defaultStartupTimeout = 10 * time.Second

// newApp connects to NATS and Redis and builds every part the roles need.
// On error, whatever was opened is closed, and the error names the part
// that failed and why.
func newApp(ctx context.Context, cfg *config.Config, r roles, log *slog.Logger, deps appDeps) (*app, error) {
	a := &app{cfg: cfg, roles: r, log: log, reg: prometheus.NewRegistry(), budget: splitShutdown(cfg.ShutdownTimeout)}
	if err := a.build(ctx, deps); err != nil {
		// Nothing ran: NATS has nothing to drain.
		if cerr := closeSteps(a.budget.Close, a.closeSteps(false)); cerr != nil {
			log.Warn("closing after the failed start", "err", cerr)
		}
		return nil, fmt.Errorf("start-up: %w", err)
	}
	return a, nil
}

// build opens and builds what newApp returns, in a; on error, a holds what
// was opened so far.
func (a *app) build(ctx context.Context, deps appDeps) (err error) {
	cfg, r, log := a.cfg, a.roles, a.log
	startupTimeout := deps.startupTimeout
	if startupTimeout <= 0 {
		startupTimeout = defaultStartupTimeout
	}
	a.m = newAppMetrics(a.reg, a.ready)

	secret := cfg.Secret
	var previous []string
	var previousAddressKeys [][]byte
	if cfg.SecretPrevious != "" {
		previous = []string{cfg.SecretPrevious}
		previousAddressKeys = [][]byte{token.DeriveKey(cfg.SecretPrevious, "address")}
	}
	if a.signer, err = token.NewSigner(secret, previous...); err != nil {
		return fmt.Errorf("JOBALERT_SECRET: %w", err)
	}

	// The files the connection settings name are read and checked before
	// anything connects.
	natsOpts, err := connect.NATSOptions(cfg)
	if err != nil {
		return redact.Wrap(err)
	}
	if a.rdb, err = connect.Redis(cfg); err != nil {
		return redact.Wrap(err)
	}
	a.rdb.AddHook(redisHook{errs: a.m.redisErrors})
	pctx, cancel := context.WithTimeout(ctx, startupTimeout)
	err = a.rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("%s: %w", connect.RedisTarget(cfg), redact.Wrap(err))
	}
	// JOBALERT_PARTITION=k/P: this replica's share of the filters, on
	// its own durable consumer.
	durable := cfg.Durable
	var part, parts int
	if cfg.Partition != "" {
		if part, parts, err = config.ParsePartition(cfg.Partition); err != nil {
			return fmt.Errorf("JOBALERT_PARTITION: %w", err)
		}
		durable = fmt.Sprintf("%s-p%d", cfg.Durable, part)
	}
	a.live = liveness.New(a.rdb, cfg.KeyPrefix, cfg.Instance)
	a.store = store.New(a.rdb, store.Config{
		Prefix: cfg.KeyPrefix, InstantWindow: cfg.InstantWindow, JobTTL: cfg.JobTTL, RepostWindow: cfg.RepostWindow, PendingLimit: 4 * cfg.DigestCap,
		PendingTTL: cfg.ConfirmTTL, AddressKey: token.DeriveKey(secret, "address"), PreviousAddressKeys: previousAddressKeys,
		RecordLease: deps.recordLease, Shards: cfg.RedisShards, Partition: part, Partitions: parts,
		WaitReplicas: cfg.RedisWaitReplicas,
	})
	// The key layout and shard count Redis holds must be this one's.
	lctx, cancel := context.WithTimeout(ctx, startupTimeout)
	err = a.store.CheckLayout(lctx)
	var wait int
	if err == nil {
		wait, err = a.store.ResolveWaitReplicas(lctx)
	}
	cancel()
	if err != nil {
		return redact.Wrap(err)
	}
	log.Info("redis key layout checked", "shards", cfg.RedisShards, "wait_replicas", wait, "partition", cfg.Partition)

	a.natsEv = newNATSEvents(log)
	a.natsEv.countError = a.m.natsError
	a.nc, err = nats.Connect(cfg.NATSURL, append(append(natsOpts, a.natsEv.options()...), nats.Name("jobalert"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				a.m.natsError("disconnect")
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.RetryOnFailedConnect(true), nats.DrainTimeout(a.budget.Close))...)
	if err != nil {
		return fmt.Errorf("NATS at %s: %w", redact.URLs(cfg.NATSURL), err)
	}
	if a.js, err = jetstream.New(a.nc); err != nil {
		return fmt.Errorf("NATS JetStream: %w", err)
	}

	// The private feeds, in the main Redis: the consumer's tap and the
	// digests append, the API serves them.
	a.feeds = feed.NewStore(a.rdb, feed.Keys{Prefix: cfg.KeyPrefix}, 0, nil)
	if cfg.TelegramBotToken != "" && (r.notifier || r.api) {
		if err := a.buildTelegram(deps); err != nil {
			return err
		}
	}

	if r.notifier || r.api {
		if a.render, err = notifier.NewRenderer(notifier.RenderConfig{
			From: cfg.MailFrom, PublicURL: cfg.PublicURL, MaxJobs: cfg.DigestCap, ConfirmValidFor: cfg.ConfirmTTL,
		}); err != nil {
			return fmt.Errorf("email templates: %w", err)
		}
		if a.mailer, err = notifier.NewMailer(notifier.MailerConfig{
			Host: cfg.SMTPHost, Port: cfg.SMTPPort, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword,
			TLS: cfg.SMTPTLS, Pool: cfg.SMTPPool, Timeout: cfg.SMTPTimeout, Metrics: a.m.notifier,
			DKIM: notifier.DKIMConfig{Domain: cfg.DKIMDomain, Selector: cfg.DKIMSelector, PrivateKeyPEM: cfg.DKIMPrivateKey},
		}); err != nil {
			return fmt.Errorf("mailer: %w", err)
		}
		wcfg := webhook.Config{
			AllowPrivate: cfg.WebhookAllowPrivate, Workers: cfg.WebhookWorkers,
			PerHost: cfg.WebhookPerHost, PerSubscription: cfg.WebhookPerSubscription, SlowAfter: cfg.WebhookSlowAfter,
			UserAgent: "jobalert/" + version, OnGone: a.webhookGone, Metrics: a.m.webhook, Liveness: a.live,
			WaitReplicas: cfg.RedisWaitReplicas,
		}
		if deps.webhookCfg != nil {
			deps.webhookCfg(&wcfg)
		}
		a.hooks = webhook.New(a.rdb, cfg.KeyPrefix, wcfg, log)
	}

	if r.notifier {
		// The digests this process claims carry its owner id; while it
		// beats nobody takes them, and once it is gone (or restarted) they
		// are taken over within seconds instead of after their lease.
		bctx, cancel := context.WithTimeout(ctx, startupTimeout)
		err := a.live.Beat(bctx)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", connect.RedisTarget(cfg), redact.Wrap(err))
		}
		a.store.WithLiveness(a.live)
		a.digester = notifier.NewDigester(a.store, a.render, a.mailer, webhookQueue{a.hooks}, a.links(),
			notifier.DigestConfig{Cap: cfg.DigestCap, Workers: cfg.SMTPPool, BounceLimit: cfg.BounceLimit,
				Tick: deps.digestTick, RetryBase: deps.retryBase,
				ShutdownTimeout: a.budget.grace(),
				Chats:           newChats(a.rdb, cfg.KeyPrefix, cfg.WebhookAllowPrivate, a.tgBot, cfg.DigestCap, chatOptions{sleep: deps.chatSleep}),
				Feed:            a.feeds, ChatAttempts: cfg.ChatMaxAttempts, ChatDeadLetterTTL: cfg.ChatDeadLetterTTL},
			log, a.m.notifier)
		a.m.registerNotifier(a.store, a.hooks)
	}

	if r.consumer {
		a.index = newLiveIndex()
		// Matches reach the feeds within seconds, whatever the frequency.
		a.feedTap = newFeedTap(a.store, a.feeds, a.store, log)
		var rec consumer.Recorder = a.feedTap
		if deps.wrapRecorder != nil {
			rec = deps.wrapRecorder(rec)
		}
		a.consumer = consumer.New(a.js, consumer.Config{Stream: cfg.Stream, Consumer: durable, Batch: cfg.ConsumerBatch, InFlight: cfg.ConsumerInFlight,
			RecordTimeout: deps.recordTimeout, ShutdownTimeout: a.budget.grace()}, a.index, rec, log, a.m.consumer)
		a.consumer.UseReposts(a.store)
		if err := a.store.CheckRecordTimeout(a.consumer.RecordTimeout()); err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		// The consumer role needs NATS now, to create the streams: say so
		// plainly when it cannot be reached.
		if err := a.natsEv.waitConnected(ctx, a.nc, startupTimeout); err != nil {
			return fmt.Errorf("NATS at %s: %w", redact.URLs(cfg.NATSURL), err)
		}
		sctx, cancel := context.WithTimeout(ctx, startupTimeout)
		streams := consumer.StreamConfig{Stream: cfg.Stream, Consumer: durable, Replicas: cfg.StreamReplicas,
			MaxAge: cfg.StreamMaxAge, MaxBytes: cfg.StreamMaxBytes, DLQMaxAge: cfg.DLQMaxAge, DLQMaxBytes: cfg.DLQMaxBytes}
		err := consumer.EnsureStreams(sctx, a.js, streams)
		cancel()
		if err != nil {
			return fmt.Errorf("NATS JetStream streams: %w", err)
		}
		a.m.registerConsumer(a.index, consumer.NewBacklogCollector(a.js, streams, sampleTimeout, func(err error) {
			a.m.natsError("info")
			log.Debug("metrics: reading the consumer's backlog failed", "err", err)
		}))
	}

	if r.api {
		a.recent = preview.New()
		if a.feedHTTP, err = feed.NewHandler(a.feeds, feed.HandlerConfig{PublicURL: cfg.PublicURL, Logger: log}); err != nil {
			return fmt.Errorf("feeds: %w", err)
		}
		ln := deps.listener
		if ln == nil {
			if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
				return fmt.Errorf("HTTP listener (JOBALERT_HTTP_ADDR %s): %w", cfg.HTTPAddr, err)
			}
		}
		perIP := cfg.HTTPMaxConnsPerIP
		if cfg.TrustProxy {
			perIP = 0 // every connection comes from the proxy
		}
		a.limiter = connlimit.New(ln, connlimit.Config{Max: cfg.HTTPMaxConns, PerIP: perIP, Reject: tooManyConnections})
		a.listener = a.limiter
		srv, err := a.newAPI()
		if err != nil {
			return fmt.Errorf("HTTP API: %w", err)
		}
		a.http = &http.Server{Handler: a.m.registerHTTP(a.limiter, cfg.HTTPMaxConns, srv.Routes(), srv.Handler()),
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
			IdleTimeout: 2 * time.Minute, ConnState: a.limiter.ConnState}
	}

	if cfg.MetricsAddr != "" {
		ln := deps.metricsListener
		if ln == nil {
			if ln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
				return fmt.Errorf("metrics listener (JOBALERT_METRICS_ADDR %s): %w", cfg.MetricsAddr, err)
			}
		}
		// Its own small bound: Prometheus and the probes need few.
		ml := connlimit.New(ln, connlimit.Config{Max: metricsMaxConns})
		a.metricsListener = ml
		a.metricsHTTP = &http.Server{Handler: api.Probes(a.ready, a.metricsHandler(), a.log),
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: time.Minute, ConnState: ml.ConnState}
	}
	return nil
}

// buildTelegram builds the bot, its start tokens, the poller (notifier
// role) and the start links (api role). It makes no request: the bot's
// username is asked for when serve runs (telegramLinks.Run), so that
// serve starts while the Bot API is unreachable.
func (a *app) buildTelegram(deps appDeps) error {
	cfg := a.cfg
	sleep := deps.chatSleep
	if sleep == nil {
		sleep = channel.RealSleep
	}
	// The token stays a telegram.Token from here on: it never prints.
	bot, err := telegram.New(telegram.Options{Token: telegram.Token(cfg.TelegramBotToken), APIURL: cfg.TelegramAPIURL,
		PollTimeout: deps.telegramPoll, MaxWait: chatMaxWait, Sleep: deps.chatSleep, Logger: a.log})
	if err != nil {
		return fmt.Errorf("JOBALERT_TELEGRAM_BOT_TOKEN: %w", err)
	}
	a.tgBot = bot
	keys := telegram.Keys{Prefix: cfg.KeyPrefix}
	starts := telegram.NewStarts(a.rdb, keys, 0)
	if a.roles.notifier {
		// Owner is the instance name, so that a restarted process takes its
		// own lease back at once instead of waiting for it to expire.
		if a.tgPoller, err = telegram.NewPoller(bot, a.rdb, keys, starts, telegramBinder{s: a.store, now: time.Now},
			telegram.PollerOptions{Owner: cfg.Instance, Sleep: deps.chatSleep, Logger: a.log}); err != nil {
			return fmt.Errorf("telegram poller: %w", err)
		}
	}
	if a.roles.api {
		a.tgLinks = &telegramLinks{bot: bot, starts: starts, log: a.log.With("component", "telegram"), sleep: sleep}
	}
	return nil
}

// metricsMaxConns bounds the connections of the metrics listener.
const metricsMaxConns = 64

// tooManyConnections answers a connection refused for its address's bound.
var tooManyConnections = []byte("HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 5\r\nConnection: close\r\nContent-Length: 39\r\n\r\ntoo many connections from your address\n")

// Run runs the roles until ctx is done (or one of them fails), then shuts
// down within JOBALERT_SHUTDOWN_TIMEOUT, one step after the other, each
// within its share (shutdownBudget): HTTP, intake, in-flight work, close.
// The last line it logs comes after the last close: "stopped cleanly",
// or "stopped with errors" with what went wrong, which it also returns.
func (a *app) Run(ctx context.Context) error {
	work, stopWork := context.WithCancel(context.Background())
	defer stopWork()

	// The liveness key beats until in-flight work has finished, so that
	// what this process still holds is taken over by others only once it
	// has let go of it (a crash lets the key expire instead).
	liveCtx, stopLive := context.WithCancel(context.Background())
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		if err := a.live.Run(liveCtx, func(err error) { a.log.Warn("liveness beat", "err", err) }); err != nil {
			a.log.Warn("liveness key not deleted: others take over this process's claims when it expires", "err", err)
		}
	}()
	defer func() { stopLive(); <-liveDone }()

	var wg sync.WaitGroup
	failed := make(chan error, 8)
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(work); err != nil && work.Err() == nil {
				failed <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}

	if a.roles.consumer {
		loaded := make(chan struct{})
		start("filter index", func(ctx context.Context) error {
			// Redis errors are retried inside; it returns once ctx is done.
			a.store.FollowFilters(ctx, a.index.newIndex, func(ix store.FilterIndex, n int) {
				a.m.indexBuild.Observe(a.index.swap(ix).Seconds())
				// One goroutine calls this. The channel closes before the
				// flag is set, so a process /readyz calls ready has its
				// consumer past the wait below.
				if !a.indexLoaded.Load() {
					a.log.Info("filter index loaded", "filters", n)
					close(loaded)
					a.indexLoaded.Store(true)
				} else {
					a.log.Info("filter index reloaded", "filters", n)
				}
			}, a.log.With("component", "index"))
			return nil
		})
		start("feed tap", a.feedTap.Run)
		// Matching before the index holds every filter would miss alerts,
		// and recording before the feed tap knows the feeds would miss
		// feed entries.
		start("consumer", func(ctx context.Context) error {
			for _, ready := range []<-chan struct{}{loaded, a.feedTap.Loaded()} {
				select {
				case <-ready:
				case <-ctx.Done():
					// Both may be done when this runs late: what was
					// ready (and /readyz said so) runs, and stops at once.
					select {
					case <-ready:
					default:
						return nil
					}
				}
			}
			return a.consumer.Run(ctx)
		})
	}
	if a.roles.notifier {
		start("digests", a.digester.Run)
		start("webhooks", a.hooks.Run)
		if a.tgPoller != nil {
			// Every replica runs it; the lease in Redis lets one read.
			start("telegram poller", a.tgPoller.Run)
		}
	}
	if a.roles.api && a.tgLinks != nil {
		start("telegram bot name", a.tgLinks.Run)
	}
	if a.roles.api {
		start("live preview", a.followPreview)
		start("http", func(context.Context) error {
			if err := a.http.Serve(a.listener); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		a.log.Info("http listening", "addr", a.listener.Addr().String(), "public_url", redact.URL(a.cfg.PublicURL),
			"max_conns", a.cfg.HTTPMaxConns, "max_conns_per_ip", a.limiter.Bounds().PerIP)
	}
	if a.metricsHTTP != nil {
		start("metrics http", func(context.Context) error {
			if err := a.metricsHTTP.Serve(a.metricsListener); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
		a.log.Info("metrics listening", "addr", a.metricsListener.Addr().String())
	}
	a.log.Info("jobalert running", "roles", a.roles.String(), "version", version)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-failed:
		a.log.Error("a component failed; shutting down", "err", runErr)
	}
	errs := []error{runErr}
	b := a.budget
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout,
		"http", b.HTTP, "intake", b.Intake, "in_flight", b.InFlight, "close", b.Close)

	// 1. HTTP: no new requests; the ones in progress finish. The metrics
	// listener stops with the public one.
	for _, srv := range []*http.Server{a.http, a.metricsHTTP} {
		if srv == nil {
			continue
		}
		hctx, cancel := context.WithTimeout(context.Background(), b.HTTP)
		if err := srv.Shutdown(hctx); err != nil {
			_ = srv.Close()
			errs = append(errs, fmt.Errorf("shutdown: HTTP requests still in progress after %v were cut off: %w", b.HTTP, err))
		}
		cancel()
	}

	// 2 and 3. Intake stops; in-flight work finishes within the grace the
	// consumer and the digester were given (intake + in-flight).
	stopWork()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(b.grace())
	select {
	case <-done:
	case <-t.C:
		errs = append(errs, fmt.Errorf("shutdown: in-flight work did not finish within %v; it will be redelivered", b.grace()))
	}
	t.Stop()
	stopLive()
	<-liveDone

	// 4. Close, in order, within its budget.
	if err := closeSteps(b.Close, a.closeSteps(true)); err != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
	}

	if shutdownErr := errors.Join(errs[1:]...); shutdownErr != nil {
		a.log.Error("stopped with errors", "err", shutdownErr)
	} else {
		a.log.Info("stopped cleanly")
	}
	return errors.Join(errs...)
}

// closeSteps are the steps that close what build opened, in order: SMTP
// connections (QUIT), Redis, NATS (drained when drain is set, else closed
// at once) and, when it was never served, the HTTP listener.
func (a *app) closeSteps(drain bool) []closeStep {
	var steps []closeStep
	if a.http == nil && a.listener != nil {
		steps = append(steps, closeStep{"HTTP listener", func(context.Context) error { return a.listener.Close() }})
	}
	if a.metricsHTTP == nil && a.metricsListener != nil {
		steps = append(steps, closeStep{"metrics listener", func(context.Context) error { return a.metricsListener.Close() }})
	}
	if a.mailer != nil {
		steps = append(steps, closeStep{"SMTP connections", func(context.Context) error { return a.mailer.Close() }})
	}
	if a.rdb != nil {
		steps = append(steps, closeStep{"Redis", func(context.Context) error { return a.rdb.Close() }})
	}
	if a.nc != nil {
		steps = append(steps, closeStep{"NATS", func(ctx context.Context) error {
			if !drain {
				a.nc.Close()
				return nil
			}
			return a.natsEv.drain(ctx, a.nc)
		}})
	}
	return steps
}

func (r roles) String() string {
	var s []string
	if r.consumer {
		s = append(s, "consumer")
	}
	if r.notifier {
		s = append(s, "notifier")
	}
	if r.api {
		s = append(s, "api")
	}
	return fmt.Sprint(s)
}

// ready reports whether this process can do its work: NATS connected,
// Redis answering, and (for the consumer) the filter index and the feed
// subscribers loaded. Each
// part that is not is an *api.Unready in the joined error: /readyz shows
// the parts' names, the log their detail.
func (a *app) ready(ctx context.Context) error {
	var errs []error
	if st := a.nc.Status(); st != nats.CONNECTED {
		errs = append(errs, &api.Unready{Part: "nats", Err: fmt.Errorf("connection %s", st)})
	}
	if err := a.store.Ping(ctx); err != nil {
		errs = append(errs, &api.Unready{Part: "redis", Err: err})
	}
	if a.roles.consumer && !a.indexLoaded.Load() {
		errs = append(errs, &api.Unready{Part: "filter_index", Err: errors.New("still loading")})
	}
	if a.roles.consumer {
		select {
		case <-a.feedTap.Loaded():
		default:
			errs = append(errs, &api.Unready{Part: "feeds", Err: errors.New("feed subscriptions still loading")})
		}
	}
	return errors.Join(errs...)
}

// webhookGone tells a subscription's owner that their endpoint answered
// 410 Gone and was disabled.
func (a *app) webhookGone(ctx context.Context, subID, url string) {
	sub, err := a.store.GetSubscription(ctx, subID)
	if err != nil {
		a.log.Warn("webhook disabled; owner not found", "subscription", subID, "err", err)
		return
	}
	msg, err := a.render.WebhookDisabled(sub.Email, url)
	if err == nil {
		err = a.mailer.Send(ctx, msg)
		a.m.notifier.CountEmail(notifier.KindNotice, err)
	}
	if err != nil {
		a.log.Warn("webhook disabled; telling the owner failed", "subscription", subID, "err", err)
	}
}

// webhookQueue adapts the webhook service to the digest engine.
type webhookQueue struct{ s *webhook.Service }

func (q webhookQueue) EnqueueDigest(ctx context.Context, id, subID string, jobs []matcher.Job, more int) error {
	return q.s.Enqueue(ctx, webhook.Delivery{ID: id, SubscriptionID: subID, Jobs: jobs, More: more})
}
