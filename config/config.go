// Package config reads jobalert's configuration from the environment
// (prefix JOBALERT_) with envconfig, checks every value, and reports every
// problem at once, one line each.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/jobalert/jobalert/internal/redact"
)

// Prefix is the environment prefix of every setting.
const Prefix = "JOBALERT"

// Config is the service's configuration. The envconfig tag is the variable
// name after the prefix; desc is shown by `jobalert config` and the README.
// A secret tag says how Print masks the value: "true" shows only whether
// it is set, "url" masks the passwords, tokens and query values of each
// URL of a comma-separated list (internal/redact).
type Config struct {
	NATSURL        string `envconfig:"NATS_URL" default:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma-separated; user:password@ or token@ for those logins, tls:// for TLS with the system roots" secret:"url"`
	NATSCreds      string `envconfig:"NATS_CREDS" desc:"NATS credentials file (.creds: user JWT and nkey seed)"`
	NATSNkey       string `envconfig:"NATS_NKEY" desc:"NATS nkey seed file (nkey login; not with NATS_CREDS)"`
	NATSTLSCA      string `envconfig:"NATS_TLS_CA" desc:"CA certificates (PEM file) that NATS servers are verified with, instead of the system roots; turns TLS on"`
	NATSTLSCert    string `envconfig:"NATS_TLS_CERT" desc:"client certificate (PEM file) shown to NATS, with NATS_TLS_KEY; turns TLS on"`
	NATSTLSKey     string `envconfig:"NATS_TLS_KEY" desc:"private key (PEM file) of NATS_TLS_CERT"`
	Stream         string `envconfig:"STREAM" default:"JOBS" desc:"JetStream stream of job events (subjects jobs.>)"`
	StreamReplicas int    `envconfig:"STREAM_REPLICAS" default:"1" desc:"replicas of the JetStream streams (3 on a three-node cluster)"`
	Durable        string `envconfig:"CONSUMER" default:"jobalert" desc:"durable consumer name shared by every replica"`
	RedisURL       string `envconfig:"REDIS_URL" default:"redis://127.0.0.1:6379/0" desc:"Redis URL: redis://[user:password@]host:port/db, rediss:// for TLS; with Sentinel its host is not used" secret:"url"`
	KeyPrefix      string `envconfig:"REDIS_PREFIX" default:"jobalert:" desc:"prefix of every Redis key"`

	StreamMaxAge          time.Duration `envconfig:"STREAM_MAX_AGE" default:"168h" desc:"job events older than this leave the stream, consumed or not (0: no age limit; docs/operations.md, Retention)"`
	StreamMaxBytes        int64         `envconfig:"STREAM_MAX_BYTES" default:"-1" desc:"size bound of the job events stream; past it the oldest events leave, consumed or not (-1: none)"`
	DLQMaxAge             time.Duration `envconfig:"DLQ_MAX_AGE" default:"720h" desc:"dead letters older than this leave the DLQ stream (0: no age limit)"`
	DLQMaxBytes           int64         `envconfig:"DLQ_MAX_BYTES" default:"-1" desc:"size bound of the DLQ stream; past it the oldest dead letters leave (-1: none)"`
	RedisTLSCA            string        `envconfig:"REDIS_TLS_CA" desc:"CA certificates (PEM file) that Redis is verified with, instead of the system roots (rediss:// only)"`
	RedisTLSCert          string        `envconfig:"REDIS_TLS_CERT" desc:"client certificate (PEM file) shown to Redis, with REDIS_TLS_KEY (rediss:// only)"`
	RedisTLSKey           string        `envconfig:"REDIS_TLS_KEY" desc:"private key (PEM file) of REDIS_TLS_CERT"`
	RedisSentinelMaster   string        `envconfig:"REDIS_SENTINEL_MASTER" desc:"Sentinel master name: Redis is the primary the Sentinels name, followed through failovers"`
	RedisSentinels        []string      `envconfig:"REDIS_SENTINELS" desc:"Sentinel addresses, host:port, comma-separated (with REDIS_SENTINEL_MASTER)"`
	RedisSentinelPassword string        `envconfig:"REDIS_SENTINEL_PASSWORD" desc:"password of the Sentinels themselves (their requirepass)" secret:"true"`
	RedisCluster          []string      `envconfig:"REDIS_CLUSTER" desc:"Redis Cluster seed addresses, host:port, comma-separated: selects cluster mode; REDIS_URL then only lends its user, password and rediss:// scheme (not with Sentinel)"`
	RedisShards           int           `envconfig:"REDIS_SHARDS" default:"64" desc:"subscription shards, 1..16384, fixed for a deployment: start is refused if it differs from the value stored at first start (docs/scaling.md)"`
	RedisWaitReplicas     int           `envconfig:"REDIS_WAIT_REPLICAS" default:"-1" desc:"replicas each record step and claim WAITs for before the event is acked or the email sent (-1: auto, 1 when the primary has replicas, else 0)"`
	Partition             string        `envconfig:"PARTITION" desc:"k/P: this consumer replica holds and matches only the filters of partition k of P, on its own durable CONSUMER-p<k> (empty: all filters)"`
	Instance              string        `envconfig:"INSTANCE" desc:"stable name of this instance, for the liveness keys that let a restarted process take back its own claimed work at once; unique among the processes running at the same time (default: the host name)"`

	SMTPHost     string        `envconfig:"SMTP_HOST" default:"localhost" desc:"SMTP relay host"`
	SMTPPort     int           `envconfig:"SMTP_PORT" default:"587" desc:"SMTP relay port"`
	SMTPUsername string        `envconfig:"SMTP_USERNAME" desc:"SMTP user (empty: no auth)"`
	SMTPPassword string        `envconfig:"SMTP_PASSWORD" desc:"SMTP password" secret:"true"`
	SMTPTLS      string        `envconfig:"SMTP_TLS" default:"starttls" desc:"none, starttls or tls"`
	SMTPPool     int           `envconfig:"SMTP_POOL" default:"4" desc:"SMTP connections kept open and reused"`
	SMTPTimeout  time.Duration `envconfig:"SMTP_TIMEOUT" default:"30s" desc:"timeout of each SMTP command"`
	MailFrom     string        `envconfig:"MAIL_FROM" default:"jobalert <alerts@localhost>" desc:"From address of every email"`

	DKIMDomain     string `envconfig:"DKIM_DOMAIN" desc:"DKIM signing domain (empty: no DKIM)"`
	DKIMSelector   string `envconfig:"DKIM_SELECTOR" desc:"DKIM selector"`
	DKIMPrivateKey string `envconfig:"DKIM_PRIVATE_KEY" desc:"DKIM private key, PEM" secret:"true"`

	HTTPAddr       string `envconfig:"HTTP_ADDR" default:":8080" desc:"address of the HTTP API and pages"`
	PublicURL      string `envconfig:"PUBLIC_URL" default:"http://localhost:8080" desc:"base URL used in email links" secret:"url"`
	Secret         string `envconfig:"SECRET" desc:"HMAC key for email tokens, 16+ bytes; required outside demo" secret:"true"`
	SecretPrevious string `envconfig:"SECRET_PREVIOUS" desc:"the secret before the last rotation: links signed with it keep working and suppression entries keyed with it are still found (docs/operations.md, Rotating secrets)" secret:"true"`
	AdminToken     string `envconfig:"ADMIN_TOKEN" desc:"bearer token of /v1/admin/ (empty: admin API off)" secret:"true"`

	MetricsAddr       string `envconfig:"METRICS_ADDR" desc:"address of a second listener serving /metrics, /healthz and /readyz, for every role; when set, /metrics leaves the public listener (empty: /metrics on HTTP_ADDR, api role only)"`
	HTTPMaxConns      int    `envconfig:"HTTP_MAX_CONNS" default:"1024" desc:"connections the public listener holds open at once; past it idle ones are closed first, then new ones wait"`
	HTTPMaxConnsPerIP int    `envconfig:"HTTP_MAX_CONNS_PER_IP" default:"64" desc:"connections one client address (IPv6: one /64) may hold open; past it its idle ones are closed first, then new ones get 429 (0: no bound; not applied with TRUST_PROXY)"`

	InstantWindow             time.Duration `envconfig:"INSTANT_WINDOW" default:"1m" desc:"instant alerts coalesce over this window; 0 sends each match at once"`
	DigestCap                 int           `envconfig:"DIGEST_CAP" default:"25" desc:"jobs listed per email; the rest are counted"`
	BounceLimit               int           `envconfig:"BOUNCE_LIMIT" default:"1" desc:"hard bounces before an address is suppressed"`
	JobTTL                    time.Duration `envconfig:"JOB_TTL" default:"720h" desc:"how long job records are kept after their last event"`
	RepostWindow              time.Duration `envconfig:"REPOST_WINDOW" default:"720h" desc:"a job posted again (same normalised company, title and first location, same canonical_id or same url) within this long of its last posting is the same job (docs/events.md, Reposts); 0 turns collapsing off; at most JOB_TTL"`
	ConfirmTTL                time.Duration `envconfig:"CONFIRM_TTL" default:"168h" desc:"how long a confirmation link is valid; an unconfirmed subscription is deleted after it"`
	ManageTTL                 time.Duration `envconfig:"MANAGE_TTL" default:"2160h" desc:"how long a manage link is valid (each email carries a fresh one)"`
	SubscriptionsPerEmail     int           `envconfig:"SUBSCRIPTIONS_PER_EMAIL" default:"20" desc:"subscriptions one address may hold"`
	ConfirmationsPerHour      int           `envconfig:"CONFIRMATIONS_PER_HOUR" default:"5" desc:"confirmation emails per address an hour"`
	ConfirmationsPerIPPerHour int           `envconfig:"CONFIRMATIONS_PER_IP_PER_HOUR" default:"30" desc:"confirmation emails one client IP (IPv6: one /64) may ask for an hour"`
	ConfirmationsPerHourTotal int           `envconfig:"CONFIRMATIONS_PER_HOUR_TOTAL" default:"1000" desc:"sign-up emails all clients together may ask for an hour"`
	AllowedOrigins            []string      `envconfig:"ALLOWED_ORIGINS" desc:"web origins besides PUBLIC_URL's whose pages may post the sign-up form and API, comma-separated (https://board.example)"`
	TrustProxy                bool          `envconfig:"TRUST_PROXY" default:"false" desc:"take the client IP from the right-most X-Forwarded-For entry (behind your proxy)"`

	WebhookAllowPrivate bool `envconfig:"WEBHOOK_ALLOW_PRIVATE" default:"false" desc:"allow http and private/loopback webhook targets"`
	WebhookWorkers      int  `envconfig:"WEBHOOK_WORKERS" default:"16" desc:"webhook deliveries in flight"`

	WebhookPerHost         int           `envconfig:"WEBHOOK_PER_HOST" desc:"webhook calls in flight to one host across replicas (default WEBHOOK_WORKERS/4, at least 2)"`
	WebhookPerSubscription int           `envconfig:"WEBHOOK_PER_SUBSCRIPTION" default:"2" desc:"webhook calls in flight for one subscription across replicas"`
	WebhookSlowAfter       time.Duration `envconfig:"WEBHOOK_SLOW_AFTER" desc:"a webhook answer slower than this counts toward the endpoint's circuit breaker (default half the 15s timeout)"`

	// The chat channels (docs/channels.md). The bot token stays a plain
	// string here, as the other secrets do (config imports no channel
	// package); the wiring turns it into a telegram.Token, which never
	// prints, before anything else sees it.
	TelegramBotToken  string        `envconfig:"TELEGRAM_BOT_TOKEN" desc:"Telegram bot token from @BotFather (empty: the Telegram channel is off)" secret:"true"`
	TelegramAPIURL    string        `envconfig:"TELEGRAM_API_URL" default:"https://api.telegram.org" desc:"Telegram Bot API base URL (tests; a self-hosted telegram-bot-api)" secret:"url"`
	ChatMaxAttempts   int           `envconfig:"CHAT_MAX_ATTEMPTS" default:"12" desc:"tries of one Slack, Discord or Telegram message before it is dead-lettered (a 429 waited out by the sender is not a try)"`
	ChatDeadLetterTTL time.Duration `envconfig:"CHAT_DEAD_LETTER_TTL" default:"720h" desc:"how long a dead-lettered chat message is kept for replay (GET /v1/admin/chat-dead-letters)"`

	ConsumerBatch    int           `envconfig:"CONSUMER_BATCH" default:"256" desc:"job events fetched and recorded per batch"`
	ConsumerInFlight int           `envconfig:"CONSUMER_IN_FLIGHT" default:"2" desc:"batches one replica handles at once (one matched while another is recorded)"`
	ShutdownTimeout  time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"25s" desc:"bound on the whole shutdown, split between HTTP, intake, in-flight work and close (docs/operations.md)"`
	LogLevel         string        `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
}

// Load reads the configuration through getenv, which returns a variable's
// value or "" when it is unset (an empty value counts as unset: the
// default applies); nil reads the process environment. Load only reads:
// it never writes the environment, so loads may run at once, each with
// its own getenv. It returns every problem found, joined, one line per
// problem, each naming the variable. requireSecret is false for the demo,
// which makes its own. Variables Config does not name are ignored.
func Load(getenv func(string) string, requireSecret bool) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := &Config{}
	// envconfig stops at the first bad value; decoding field by field
	// reports them all.
	problems := decodeAll(cfg, getenv)
	if cfg.Instance == "" {
		cfg.Instance = hostname()
	}
	// A value that did not parse is reported once, not again by the checks.
	for _, p := range cfg.check(requireSecret) {
		name, _, _ := strings.Cut(p, ":")
		if !reported(problems, name) {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return cfg, nil
}

// hostname is the default of Instance: the host name, reduced to the
// characters an instance name allows ("jobalert" when there is none).
func hostname() string {
	h, err := os.Hostname()
	var b strings.Builder
	for _, r := range h {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:", r) {
			b.WriteRune(r)
		}
	}
	if err != nil || b.Len() == 0 {
		return "jobalert"
	}
	return b.String()[:min(b.Len(), 128)]
}

func reported(problems []string, name string) bool {
	for _, p := range problems {
		if strings.HasPrefix(p, name+":") {
			return true
		}
	}
	return false
}

func describe(f reflect.StructField, err error) string {
	name := key(f)
	var pe *envconfig.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s: %q is not a valid %s", name, pe.Value, kindName(f.Type))
	}
	return fmt.Sprintf("%s: %v", name, err)
}

func kindName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration (e.g. 30s, 1m, 2h)"
	case t.Kind() == reflect.Bool:
		return "boolean (true or false)"
	case t.Kind() == reflect.Int, t.Kind() == reflect.Int64:
		return "integer"
	}
	return t.String()
}

func (c *Config) check(requireSecret bool) []string {
	var p []string
	bad := func(name, format string, args ...any) {
		p = append(p, fmt.Sprintf("%s_%s: %s", Prefix, name, fmt.Sprintf(format, args...)))
	}
	if !strings.HasPrefix(c.NATSURL, "nats://") && !strings.HasPrefix(c.NATSURL, "tls://") && !strings.HasPrefix(c.NATSURL, "ws") {
		bad("NATS_URL", "%q is not a NATS URL (nats://host:4222)", redact.URLs(c.NATSURL))
	}
	if c.Stream == "" || strings.ContainsAny(c.Stream, ".*> \t") {
		bad("STREAM", "%q is not a valid stream name (no spaces, dots or wildcards)", c.Stream)
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		bad("STREAM_REPLICAS", "%d must be between 1 and 5", c.StreamReplicas)
	}
	for name, d := range map[string]time.Duration{"STREAM_MAX_AGE": c.StreamMaxAge, "DLQ_MAX_AGE": c.DLQMaxAge} {
		if d != 0 && d < time.Hour {
			bad(name, "%s must be 0 (no age limit) or at least 1h", d)
		}
	}
	for name, n := range map[string]int64{"STREAM_MAX_BYTES": c.StreamMaxBytes, "DLQ_MAX_BYTES": c.DLQMaxBytes} {
		if n != -1 && n < 1<<20 {
			bad(name, "%d must be -1 (no bound) or at least 1048576 (1 MiB)", n)
		}
	}
	if c.Durable == "" || strings.ContainsAny(c.Durable, ".*> \t") {
		bad("CONSUMER", "%q is not a valid consumer name (no spaces, dots or wildcards)", c.Durable)
	}
	if c.NATSCreds != "" && c.NATSNkey != "" {
		bad("NATS_NKEY", "set together with JOBALERT_NATS_CREDS: use one of them")
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		bad("NATS_TLS_CERT", "JOBALERT_NATS_TLS_CERT and JOBALERT_NATS_TLS_KEY go together: set both or neither")
	}
	redisURL, err := url.Parse(c.RedisURL)
	if err != nil || (redisURL.Scheme != "redis" && redisURL.Scheme != "rediss" && redisURL.Scheme != "unix") {
		bad("REDIS_URL", "not a Redis URL (redis://host:6379/0)")
	} else if redisURL.Scheme != "rediss" {
		for name, v := range map[string]string{"REDIS_TLS_CA": c.RedisTLSCA, "REDIS_TLS_CERT": c.RedisTLSCert, "REDIS_TLS_KEY": c.RedisTLSKey} {
			if v != "" {
				bad(name, "set, but JOBALERT_REDIS_URL is %s://: TLS needs a rediss:// URL", redisURL.Scheme)
			}
		}
	}
	if (c.RedisTLSCert == "") != (c.RedisTLSKey == "") {
		bad("REDIS_TLS_CERT", "JOBALERT_REDIS_TLS_CERT and JOBALERT_REDIS_TLS_KEY go together: set both or neither")
	}
	switch {
	case c.RedisSentinelMaster != "" && len(c.RedisSentinels) == 0:
		bad("REDIS_SENTINELS", "required with JOBALERT_REDIS_SENTINEL_MASTER: the Sentinels' addresses, host:port, comma-separated")
	case c.RedisSentinelMaster == "" && len(c.RedisSentinels) > 0:
		bad("REDIS_SENTINEL_MASTER", "required with JOBALERT_REDIS_SENTINELS: the master name the Sentinels monitor")
	case c.RedisSentinelMaster == "" && c.RedisSentinelPassword != "":
		bad("REDIS_SENTINEL_PASSWORD", "set without JOBALERT_REDIS_SENTINEL_MASTER and JOBALERT_REDIS_SENTINELS")
	case c.RedisSentinelMaster != "" && redisURL != nil && redisURL.Scheme == "unix":
		bad("REDIS_URL", "a unix socket cannot be used with Sentinel (redis:// or rediss://)")
	}
	for _, a := range c.RedisSentinels {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || !isPort(port) {
			bad("REDIS_SENTINELS", "%q is not host:port", a)
		}
	}
	if len(c.RedisCluster) > 0 {
		switch {
		case c.RedisSentinelMaster != "" || len(c.RedisSentinels) > 0:
			bad("REDIS_CLUSTER", "set together with JOBALERT_REDIS_SENTINEL_MASTER/JOBALERT_REDIS_SENTINELS: Redis Cluster and Sentinel are two modes, use one of them")
		case redisURL != nil && redisURL.Scheme == "unix":
			bad("REDIS_URL", "a unix socket cannot be used with Redis Cluster (redis:// or rediss://, which only lend their user, password and scheme)")
		case redisURL != nil && strings.Trim(redisURL.Path, "/") != "" && strings.Trim(redisURL.Path, "/") != "0":
			bad("REDIS_URL", "database %s: Redis Cluster has database 0 only (end the URL with /0 or nothing)", strings.Trim(redisURL.Path, "/"))
		}
	}
	for _, a := range c.RedisCluster {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || !isPort(port) {
			bad("REDIS_CLUSTER", "%q is not host:port", a)
		}
	}
	if c.RedisShards < 1 || c.RedisShards > 16384 {
		bad("REDIS_SHARDS", "%d must be between 1 and 16384", c.RedisShards)
	}
	if c.RedisWaitReplicas < -1 || c.RedisWaitReplicas > 16 {
		bad("REDIS_WAIT_REPLICAS", "%d must be -1 (auto) or between 0 and 16", c.RedisWaitReplicas)
	}
	if c.Partition != "" {
		if _, _, err := ParsePartition(c.Partition); err != nil {
			bad("PARTITION", "%v", err)
		}
	}
	if c.Instance != "" && !validInstance(c.Instance) {
		bad("INSTANCE", "%q must be 1 to 128 letters, digits, dots, dashes, underscores or colons", c.Instance)
	}
	switch {
	case c.RepostWindow < 0:
		bad("REPOST_WINDOW", "%s must be 0 (off) or more", c.RepostWindow)
	case c.RepostWindow > c.JobTTL:
		bad("REPOST_WINDOW", "%s is longer than JOBALERT_JOB_TTL (%s): a repost of a job whose record has expired would alert everyone again; raise JOB_TTL or shorten the window", c.RepostWindow, c.JobTTL)
	}
	switch c.SMTPTLS {
	case "none", "starttls", "tls":
	default:
		bad("SMTP_TLS", "%q must be none, starttls or tls", c.SMTPTLS)
	}
	if c.SMTPPort <= 0 || c.SMTPPort > 65535 {
		bad("SMTP_PORT", "%d is not a port", c.SMTPPort)
	}
	if c.SMTPPool < 1 || c.SMTPPool > 256 {
		bad("SMTP_POOL", "%d must be between 1 and 256", c.SMTPPool)
	}
	if c.SMTPTimeout <= 0 {
		bad("SMTP_TIMEOUT", "must be positive")
	}
	if c.DKIMDomain != "" && (c.DKIMSelector == "" || c.DKIMPrivateKey == "") {
		bad("DKIM_DOMAIN", "DKIM needs JOBALERT_DKIM_SELECTOR and JOBALERT_DKIM_PRIVATE_KEY too")
	}
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("PUBLIC_URL", "%q must be an absolute http(s) URL", redact.URL(c.PublicURL))
	}
	if c.HTTPMaxConns < 16 || c.HTTPMaxConns > 1000000 {
		bad("HTTP_MAX_CONNS", "%d must be between 16 and 1000000", c.HTTPMaxConns)
	}
	if c.HTTPMaxConnsPerIP < 0 || c.HTTPMaxConnsPerIP > c.HTTPMaxConns {
		bad("HTTP_MAX_CONNS_PER_IP", "%d must be between 0 (no bound) and HTTP_MAX_CONNS (%d)", c.HTTPMaxConnsPerIP, c.HTTPMaxConns)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("METRICS_ADDR", "%q is not a listen address (host:port or :port)", c.MetricsAddr)
		} else if c.MetricsAddr == c.HTTPAddr {
			bad("METRICS_ADDR", "%q is HTTP_ADDR too; give it a port of its own", c.MetricsAddr)
		}
	}
	if c.WebhookPerHost < 0 || c.WebhookPerSubscription < 1 || c.WebhookSlowAfter < 0 {
		bad("WEBHOOK_PER_HOST", "the webhook shares must be positive (PER_HOST %d, PER_SUBSCRIPTION %d, SLOW_AFTER %s)",
			c.WebhookPerHost, c.WebhookPerSubscription, c.WebhookSlowAfter)
	}
	for _, o := range c.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			bad("ALLOWED_ORIGINS", "%q is not a web origin (scheme://host[:port], nothing after)", redact.URL(o))
		}
	}
	for name, d := range map[string]time.Duration{"CONFIRM_TTL": c.ConfirmTTL, "MANAGE_TTL": c.ManageTTL} {
		if d < time.Hour {
			bad(name, "%s is shorter than an hour", d)
		}
	}
	for name, n := range map[string]int{"SUBSCRIPTIONS_PER_EMAIL": c.SubscriptionsPerEmail, "CONFIRMATIONS_PER_HOUR": c.ConfirmationsPerHour,
		"CONFIRMATIONS_PER_IP_PER_HOUR": c.ConfirmationsPerIPPerHour, "CONFIRMATIONS_PER_HOUR_TOTAL": c.ConfirmationsPerHourTotal} {
		if n < 1 {
			bad(name, "%d must be at least 1", n)
		}
	}
	if requireSecret && c.Secret == "" {
		bad("SECRET", "required: a random string of 16+ bytes (e.g. `openssl rand -hex 32`)")
	} else if c.Secret != "" && len(c.Secret) < 16 {
		bad("SECRET", "too short: %d bytes, need at least 16", len(c.Secret))
	}
	switch {
	case c.SecretPrevious == "":
	case c.Secret == "":
		bad("SECRET_PREVIOUS", "set without JOBALERT_SECRET: the current secret goes in JOBALERT_SECRET")
	case len(c.SecretPrevious) < 16:
		bad("SECRET_PREVIOUS", "too short: %d bytes, need at least 16", len(c.SecretPrevious))
	case c.SecretPrevious == c.Secret:
		bad("SECRET_PREVIOUS", "the same as JOBALERT_SECRET: set JOBALERT_SECRET to the new secret")
	}
	if u, err := url.Parse(c.TelegramAPIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("TELEGRAM_API_URL", "%q must be an absolute http(s) URL", redact.URL(c.TelegramAPIURL))
	}
	if t := c.TelegramBotToken; t != "" && (strings.ContainsAny(t, " \t\r\n/?#") || !strings.Contains(t, ":")) {
		// The token goes into request paths; the error must not show it.
		bad("TELEGRAM_BOT_TOKEN", "not a bot token (<bot id>:<secret> as @BotFather gives it, no spaces or slashes)")
	}
	if c.ChatMaxAttempts < 1 || c.ChatMaxAttempts > 100 {
		bad("CHAT_MAX_ATTEMPTS", "%d must be between 1 and 100", c.ChatMaxAttempts)
	}
	if c.ChatDeadLetterTTL < time.Hour {
		bad("CHAT_DEAD_LETTER_TTL", "%s is shorter than an hour", c.ChatDeadLetterTTL)
	}
	if c.InstantWindow < 0 {
		bad("INSTANT_WINDOW", "must not be negative")
	}
	if c.DigestCap < 1 || c.DigestCap > 500 {
		bad("DIGEST_CAP", "%d must be between 1 and 500", c.DigestCap)
	}
	if c.BounceLimit < 1 {
		bad("BOUNCE_LIMIT", "must be at least 1")
	}
	if c.ConsumerBatch < 1 || c.ConsumerBatch > 10000 {
		bad("CONSUMER_BATCH", "%d must be between 1 and 10000", c.ConsumerBatch)
	}
	if c.ConsumerInFlight < 1 || c.ConsumerInFlight > 16 {
		bad("CONSUMER_IN_FLIGHT", "%d must be between 1 and 16", c.ConsumerInFlight)
	}
	if _, err := c.Level(); err != nil {
		bad("LOG_LEVEL", "%q must be debug, info, warn or error", c.LogLevel)
	}
	return p
}

// ParsePartition reads a partition setting "k/P": partition k of P, with
// 0 <= k < P. The error says which part is wrong.
func ParsePartition(s string) (k, p int, err error) {
	ks, ps, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not k/P (e.g. 0/2: partition 0 of 2)", s)
	}
	k, errK := strconv.Atoi(ks)
	p, errP := strconv.Atoi(ps)
	switch {
	case errK != nil || errP != nil:
		return 0, 0, fmt.Errorf("%q is not k/P with whole numbers (e.g. 0/2: partition 0 of 2)", s)
	case p < 1 || p > 16384:
		return 0, 0, fmt.Errorf("%q: P, the number of partitions, must be between 1 and 16384", s)
	case k < 0 || k >= p:
		return 0, 0, fmt.Errorf("%q: k must be between 0 and P-1 (%d)", s, p-1)
	}
	return k, p, nil
}

func validInstance(s string) bool {
	if len(s) > 128 {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:", r)
		if !ok {
			return false
		}
	}
	return true
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n <= 65535
}

// Level returns the slog level named by LogLevel.
func (c *Config) Level() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(c.LogLevel))
	return l, err
}

// Print writes the effective configuration, one VAR=value line each, with
// secrets masked and credentials removed from URLs (the secret tag).
func (c *Config) Print(w io.Writer) {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		val := fmt.Sprint(v.Field(i).Interface())
		switch f.Tag.Get("secret") {
		case "true":
			val = redact.Secret(val)
		case "url":
			val = redact.URLs(val)
		}
		fmt.Fprintf(w, "%s_%s=%s\n", Prefix, f.Tag.Get("envconfig"), val)
	}
}

// Fields lists each variable with its default and description, for docs.
func Fields() [][3]string {
	t := reflect.TypeOf(Config{})
	var out [][3]string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		out = append(out, [3]string{Prefix + "_" + f.Tag.Get("envconfig"), f.Tag.Get("default"), f.Tag.Get("desc")})
	}
	return out
}
