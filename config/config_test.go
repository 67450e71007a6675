package config_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsLoadOutsideDemoOnlyWithSecret(t *testing.T) {
	if _, err := config.Load(env(nil), false); err != nil {
		t.Fatalf("defaults without secret requirement: got %v, want nil", err)
	}
	_, err := config.Load(env(nil), true)
	if err == nil || !strings.Contains(err.Error(), "JOBALERT_SECRET: required") {
		t.Fatalf("no secret: got %v, want JOBALERT_SECRET: required", err)
	}
}

func TestEveryProblemOnItsOwnLine(t *testing.T) {
	_, err := config.Load(env(map[string]string{
		"JOBALERT_SMTP_PORT":          "twenty-five",
		"JOBALERT_INSTANT_WINDOW":     "soon",
		"JOBALERT_SMTP_TLS":           "maybe",
		"JOBALERT_SECRET":             "short",
		"JOBALERT_PUBLIC_URL":         "example.com",
		"JOBALERT_CONSUMER_IN_FLIGHT": "0",
	}), true)
	if err == nil {
		t.Fatal("got nil error, want one line per problem")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, want := range []string{"JOBALERT_SMTP_PORT", "JOBALERT_INSTANT_WINDOW", "JOBALERT_SMTP_TLS", "JOBALERT_SECRET", "JOBALERT_PUBLIC_URL", "JOBALERT_CONSUMER_IN_FLIGHT"} {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, want+":") {
				found = true
			}
		}
		if !found {
			t.Errorf("got lines %q, want one starting with %s:", lines, want)
		}
	}
	if len(lines) != 6 {
		t.Errorf("got %d lines, want 6:\n%s", len(lines), err)
	}
}

func TestPrintMasksSecrets(t *testing.T) {
	cfg, err := config.Load(env(map[string]string{
		"JOBALERT_SECRET":                "supersecretvalue-123456",
		"JOBALERT_SECRET_PREVIOUS":       "previoussecretvalue-123",
		"JOBALERT_SMTP_PASSWORD":         "hunter2",
		"JOBALERT_ADMIN_TOKEN":           "admintokenvalue",
		"JOBALERT_DKIM_DOMAIN":           "example.com",
		"JOBALERT_DKIM_SELECTOR":         "s1",
		"JOBALERT_DKIM_PRIVATE_KEY":      "-----BEGIN PRIVATE KEY-----dkimkeybytes",
		"JOBALERT_REDIS_URL":             "rediss://user:redispw@redis:6379/0?password=querypw",
		"JOBALERT_NATS_URL":              "nats://natsuser:natspw@n1:4222,nats://natstoken@n2:4222",
		"JOBALERT_PUBLIC_URL":            "https://alerts.example.com/?key=publicsecret",
		"JOBALERT_REDIS_SENTINEL_MASTER": "mymaster", "JOBALERT_REDIS_SENTINELS": "s1:26379",
		"JOBALERT_REDIS_SENTINEL_PASSWORD": "sentinel-pw",
		"JOBALERT_TELEGRAM_BOT_TOKEN":      "123456:tg-bot-secret",
		"JOBALERT_TELEGRAM_API_URL":        "https://tg:tgapipw@bot.example/",
	}), true)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	cfg.Print(&b)
	out := b.String()
	for _, leak := range []string{"supersecretvalue", "previoussecretvalue", "hunter2", "admintokenvalue", "dkimkeybytes", "redispw", "querypw", "natspw", "natstoken", "publicsecret", "sentinel-pw", "tg-bot-secret", "tgapipw"} {
		if strings.Contains(out, leak) {
			t.Errorf("config output leaks %q:\n%s", leak, out)
		}
	}
	for _, want := range []string{
		"JOBALERT_SECRET=******** (set)\n",
		"JOBALERT_SECRET_PREVIOUS=******** (set)\n",
		"JOBALERT_SMTP_PASSWORD=******** (set)\n",
		"JOBALERT_REDIS_URL=rediss://user:****@redis:6379/0?password=****\n",
		"JOBALERT_NATS_URL=nats://natsuser:****@n1:4222,nats://****@n2:4222\n",
		"JOBALERT_PUBLIC_URL=https://alerts.example.com/?key=****\n",
		"JOBALERT_SMTP_HOST=localhost\n",
		"JOBALERT_TELEGRAM_BOT_TOKEN=******** (set)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("got:\n%s\nwant a line %q", out, want)
		}
	}
}

// Settings that do not go together fail config.Load, one line naming the
// variable each.
func TestConnectionSettingsThatDoNotGoTogether(t *testing.T) {
	for _, c := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"JOBALERT_NATS_CREDS": "a.creds", "JOBALERT_NATS_NKEY": "a.nk"}, "JOBALERT_NATS_NKEY: set together with JOBALERT_NATS_CREDS"},
		{map[string]string{"JOBALERT_NATS_TLS_CERT": "c.pem"}, "JOBALERT_NATS_TLS_CERT: "},
		{map[string]string{"JOBALERT_REDIS_TLS_CA": "ca.pem"}, "JOBALERT_REDIS_TLS_CA: set, but JOBALERT_REDIS_URL is redis://"},
		{map[string]string{"JOBALERT_REDIS_URL": "rediss://h:6380/0", "JOBALERT_REDIS_TLS_KEY": "k.pem"}, "JOBALERT_REDIS_TLS_CERT: "},
		{map[string]string{"JOBALERT_REDIS_SENTINEL_MASTER": "mymaster"}, "JOBALERT_REDIS_SENTINELS: required"},
		{map[string]string{"JOBALERT_REDIS_SENTINELS": "a:26379"}, "JOBALERT_REDIS_SENTINEL_MASTER: required"},
		{map[string]string{"JOBALERT_REDIS_SENTINEL_PASSWORD": "pw"}, "JOBALERT_REDIS_SENTINEL_PASSWORD: set without"},
		{map[string]string{"JOBALERT_REDIS_SENTINEL_MASTER": "m", "JOBALERT_REDIS_SENTINELS": "a:26379,b"}, `JOBALERT_REDIS_SENTINELS: "b" is not host:port`},
		{map[string]string{"JOBALERT_REDIS_CLUSTER": "a:7000", "JOBALERT_REDIS_SENTINEL_MASTER": "m", "JOBALERT_REDIS_SENTINELS": "s:26379"}, "JOBALERT_REDIS_CLUSTER: set together with JOBALERT_REDIS_SENTINEL_MASTER"},
		{map[string]string{"JOBALERT_REDIS_CLUSTER": "a:7000,b"}, `JOBALERT_REDIS_CLUSTER: "b" is not host:port`},
		{map[string]string{"JOBALERT_REDIS_CLUSTER": "a:7000", "JOBALERT_REDIS_URL": "unix:///run/redis.sock"}, "JOBALERT_REDIS_URL: a unix socket cannot be used with Redis Cluster"},
		{map[string]string{"JOBALERT_REDIS_CLUSTER": "a:7000", "JOBALERT_REDIS_URL": "redis://:pw@x/2"}, "JOBALERT_REDIS_URL: database 2: Redis Cluster has database 0 only"},
		{map[string]string{"JOBALERT_REDIS_SHARDS": "0"}, "JOBALERT_REDIS_SHARDS: 0 must be between 1 and 16384"},
		{map[string]string{"JOBALERT_REDIS_SHARDS": "16385"}, "JOBALERT_REDIS_SHARDS: 16385 must be between 1 and 16384"},
		{map[string]string{"JOBALERT_REDIS_WAIT_REPLICAS": "-2"}, "JOBALERT_REDIS_WAIT_REPLICAS: -2 must be -1 (auto)"},
		{map[string]string{"JOBALERT_PARTITION": "2"}, `JOBALERT_PARTITION: "2" is not k/P`},
		{map[string]string{"JOBALERT_PARTITION": "a/2"}, `JOBALERT_PARTITION: "a/2" is not k/P with whole numbers`},
		{map[string]string{"JOBALERT_PARTITION": "2/2"}, `JOBALERT_PARTITION: "2/2": k must be between 0 and P-1 (1)`},
		{map[string]string{"JOBALERT_PARTITION": "-1/2"}, `JOBALERT_PARTITION: "-1/2": k must be between 0 and P-1 (1)`},
		{map[string]string{"JOBALERT_PARTITION": "0/0"}, `JOBALERT_PARTITION: "0/0": P, the number of partitions, must be between 1 and 16384`},
		{map[string]string{"JOBALERT_INSTANCE": "web 1/x"}, `JOBALERT_INSTANCE: "web 1/x" must be 1 to 128 letters`},
	} {
		_, err := config.Load(env(c.vars), false)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: got %v, want one line %s...", c.vars, err, c.want)
		}
	}
}

func TestREADMEListsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range config.Fields() {
		if !strings.Contains(string(readme), "`"+f[0]+"`") {
			t.Errorf("README.md configuration table: missing %s", f[0])
		}
	}
}

func TestSignupSettingsChecked(t *testing.T) {
	_, err := config.Load(env(map[string]string{
		"JOBALERT_SECRET":                       "0123456789abcdef0123",
		"JOBALERT_ALLOWED_ORIGINS":              "https://board.example,https://evil.example/path",
		"JOBALERT_MANAGE_TTL":                   "5m",
		"JOBALERT_CONFIRMATIONS_PER_HOUR_TOTAL": "0",
	}), true)
	if err == nil {
		t.Fatal("got nil error, want the origin, the TTL and the cap named")
	}
	for _, want := range []string{`JOBALERT_ALLOWED_ORIGINS: "https://evil.example/path"`, "JOBALERT_MANAGE_TTL:", "JOBALERT_CONFIRMATIONS_PER_HOUR_TOTAL:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want a line with %s", err, want)
		}
	}
	cfg, err := config.Load(env(map[string]string{
		"JOBALERT_SECRET": "0123456789abcdef0123", "JOBALERT_ALLOWED_ORIGINS": "https://a.example,http://localhost:3000",
	}), true)
	if err != nil || len(cfg.AllowedOrigins) != 2 || cfg.AllowedOrigins[1] != "http://localhost:3000" {
		t.Fatalf("got %v %v, want two origins", cfg, err)
	}
}

// Loads with different getenv functions run at once without seeing each
// other's values (run with -race: nothing shared is written).
func TestParallelLoadsKeepTheirOwnValues(t *testing.T) {
	for _, port := range []string{"2525", "4650"} {
		t.Run(port, func(t *testing.T) {
			t.Parallel()
			vars := env(map[string]string{
				"JOBALERT_SMTP_PORT":    port,
				"JOBALERT_REDIS_PREFIX": "p" + port + ":",
				"JOBALERT_SECRET":       "secret-of-" + port + "-0123456789",
			})
			for range 200 {
				cfg, err := config.Load(vars, true)
				if err != nil {
					t.Fatal(err)
				}
				if got := strconv.Itoa(cfg.SMTPPort); got != port || cfg.KeyPrefix != "p"+port+":" || !strings.Contains(cfg.Secret, port) {
					t.Fatalf("got port %s, prefix %q, secret %q; want this load's own %s", got, cfg.KeyPrefix, cfg.Secret, port)
				}
			}
		})
	}
}

func TestStreamRetentionChecked(t *testing.T) {
	cfg, err := config.Load(env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StreamMaxAge != 7*24*time.Hour || cfg.DLQMaxAge != 30*24*time.Hour || cfg.StreamMaxBytes != -1 || cfg.DLQMaxBytes != -1 {
		t.Errorf("defaults: got %v %v %d %d, want 168h 720h -1 -1", cfg.StreamMaxAge, cfg.DLQMaxAge, cfg.StreamMaxBytes, cfg.DLQMaxBytes)
	}
	cfg, err = config.Load(env(map[string]string{"JOBALERT_STREAM_MAX_AGE": "0", "JOBALERT_STREAM_MAX_BYTES": "10737418240"}), false)
	if err != nil || cfg.StreamMaxAge != 0 || cfg.StreamMaxBytes != 10<<30 {
		t.Fatalf("no age limit, 10 GiB: got %v, %v, %v; want 0, 10737418240, nil", cfg.StreamMaxAge, cfg.StreamMaxBytes, err)
	}
	_, err = config.Load(env(map[string]string{
		"JOBALERT_STREAM_MAX_AGE": "90s", "JOBALERT_DLQ_MAX_AGE": "-1h",
		"JOBALERT_STREAM_MAX_BYTES": "1000", "JOBALERT_DLQ_MAX_BYTES": "lots",
	}), false)
	if err == nil {
		t.Fatal("got nil error, want the four retention variables named")
	}
	for _, want := range []string{"JOBALERT_STREAM_MAX_AGE: 1m30s must be", "JOBALERT_DLQ_MAX_AGE: -1h0m0s must be",
		"JOBALERT_STREAM_MAX_BYTES: 1000 must be", `JOBALERT_DLQ_MAX_BYTES: "lots" is not a valid integer`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want a line with %q", err, want)
		}
	}
}

func TestHTTPBoundsAndMetricsAddrChecked(t *testing.T) {
	cfg, err := config.Load(env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsAddr != "" || cfg.HTTPMaxConns != 1024 || cfg.HTTPMaxConnsPerIP != 64 {
		t.Errorf("defaults: got %q %d %d, want \"\" 1024 64", cfg.MetricsAddr, cfg.HTTPMaxConns, cfg.HTTPMaxConnsPerIP)
	}
	_, err = config.Load(env(map[string]string{
		"JOBALERT_METRICS_ADDR": ":8080", "JOBALERT_HTTP_MAX_CONNS": "8", "JOBALERT_HTTP_MAX_CONNS_PER_IP": "-1",
	}), false)
	if err == nil {
		t.Fatal("got nil error, want the three variables named")
	}
	for _, want := range []string{`JOBALERT_METRICS_ADDR: ":8080" is HTTP_ADDR too`, "JOBALERT_HTTP_MAX_CONNS: 8 must be", "JOBALERT_HTTP_MAX_CONNS_PER_IP: -1 must be"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want a line with %q", err, want)
		}
	}
	if _, err := config.Load(env(map[string]string{"JOBALERT_METRICS_ADDR": "metrics"}), false); err == nil || !strings.Contains(err.Error(), "JOBALERT_METRICS_ADDR") {
		t.Errorf("metrics address without a port: got %v, want JOBALERT_METRICS_ADDR named", err)
	}
	cfg, err = config.Load(env(map[string]string{"JOBALERT_METRICS_ADDR": "127.0.0.1:9464", "JOBALERT_HTTP_MAX_CONNS_PER_IP": "0"}), false)
	if err != nil || cfg.MetricsAddr != "127.0.0.1:9464" || cfg.HTTPMaxConnsPerIP != 0 {
		t.Errorf("got %+v %v, want the metrics address and no per-address bound", cfg, err)
	}
}

// A refused URL is named in the error without its credentials.
func TestLoadErrorsMaskURLs(t *testing.T) {
	_, err := config.Load(env(map[string]string{
		"JOBALERT_SECRET":     "0123456789abcdef0123",
		"JOBALERT_NATS_URL":   "http://natsuser:natspw@n1:4222",
		"JOBALERT_PUBLIC_URL": "ftp://u:publicpw@alerts.example.com",
		"JOBALERT_REDIS_URL":  "http://u:redispw@redis",
	}), true)
	if err == nil {
		t.Fatal("got nil error, want the three URLs refused")
	}
	for _, leak := range []string{"natspw", "publicpw", "redispw"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("got %q, want no %q in it", err, leak)
		}
	}
	if !strings.Contains(err.Error(), `JOBALERT_NATS_URL: "http://natsuser:****@n1:4222"`) {
		t.Errorf("got %q, want the NATS URL named with its password masked", err)
	}
}

func TestPreviousSecretChecked(t *testing.T) {
	for prev, want := range map[string]string{
		"tiny-pw":              "JOBALERT_SECRET_PREVIOUS: too short",
		"0123456789abcdef0123": "JOBALERT_SECRET_PREVIOUS: the same as JOBALERT_SECRET",
	} {
		_, err := config.Load(env(map[string]string{"JOBALERT_SECRET": "0123456789abcdef0123", "JOBALERT_SECRET_PREVIOUS": prev}), true)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), prev) {
			t.Errorf("previous %q: got %v, want %q without the value", prev, err, want)
		}
	}
	_, err := config.Load(env(map[string]string{"JOBALERT_SECRET_PREVIOUS": "0123456789abcdef0123"}), false)
	if err == nil || !strings.Contains(err.Error(), "JOBALERT_SECRET_PREVIOUS: set without JOBALERT_SECRET") {
		t.Errorf("previous without current: got %v, want a refusal", err)
	}
	cfg, err := config.Load(env(map[string]string{"JOBALERT_SECRET": "0123456789abcdef0123", "JOBALERT_SECRET_PREVIOUS": "fedcba9876543210fedc"}), true)
	if err != nil || cfg.SecretPrevious != "fedcba9876543210fedc" {
		t.Errorf("got %v %v, want the previous secret loaded", cfg, err)
	}
}

// The cluster settings: seeds, shards, WAIT, partition and instance, with
// their defaults.
func TestClusterSettings(t *testing.T) {
	cfg, err := config.Load(env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if cfg.RedisCluster != nil || cfg.RedisShards != 64 || cfg.RedisWaitReplicas != -1 || cfg.Partition != "" || cfg.Instance == "" {
		t.Errorf("defaults: got cluster %v shards %d wait %d partition %q instance %q, want none, 64, -1 (auto), none, the host name (%s)",
			cfg.RedisCluster, cfg.RedisShards, cfg.RedisWaitReplicas, cfg.Partition, cfg.Instance, host)
	}
	cfg, err = config.Load(env(map[string]string{
		"JOBALERT_REDIS_CLUSTER": "r1:7000,r2:7001", "JOBALERT_REDIS_SHARDS": "256", "JOBALERT_REDIS_WAIT_REPLICAS": "0",
		"JOBALERT_PARTITION": "1/3", "JOBALERT_INSTANCE": "worker-1",
	}), false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.RedisCluster, ",") != "r1:7000,r2:7001" || cfg.RedisShards != 256 || cfg.RedisWaitReplicas != 0 || cfg.Instance != "worker-1" {
		t.Errorf("got cluster %v shards %d wait %d instance %q, want r1:7000,r2:7001, 256, 0, worker-1",
			cfg.RedisCluster, cfg.RedisShards, cfg.RedisWaitReplicas, cfg.Instance)
	}
	k, p, err := config.ParsePartition(cfg.Partition)
	if k != 1 || p != 3 || err != nil {
		t.Errorf("ParsePartition(%q): got %d, %d, %v, want 1, 3, nil", cfg.Partition, k, p, err)
	}
}

// The repost window defaults to 30 days, 0 turns it off, and it may not
// outlast the job records (docs/events.md, Reposts).
func TestRepostWindowChecked(t *testing.T) {
	cfg, err := config.Load(env(nil), false)
	if err != nil || cfg.RepostWindow != 30*24*time.Hour {
		t.Fatalf("default: got %v, %v want 720h", cfg.RepostWindow, err)
	}
	if cfg, err := config.Load(env(map[string]string{"JOBALERT_REPOST_WINDOW": "0"}), false); err != nil || cfg.RepostWindow != 0 {
		t.Errorf("off: got %v, %v want 0", cfg.RepostWindow, err)
	}
	for v, want := range map[string]string{
		"1000h": "JOBALERT_REPOST_WINDOW: 1000h0m0s is longer than JOBALERT_JOB_TTL (720h0m0s)",
		"-1h":   "JOBALERT_REPOST_WINDOW: -1h0m0s must be 0 (off) or more",
	} {
		if _, err := config.Load(env(map[string]string{"JOBALERT_REPOST_WINDOW": v}), false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v want %q", v, err, want)
		}
	}
	if _, err := config.Load(env(map[string]string{"JOBALERT_REPOST_WINDOW": "1000h", "JOBALERT_JOB_TTL": "1000h"}), false); err != nil {
		t.Errorf("window = JOB_TTL: got %v want it accepted", err)
	}
}

// The chat settings: defaults, and one line naming the variable for each
// bad value, never showing the bot token.
func TestChatSettingsChecked(t *testing.T) {
	cfg, err := config.Load(env(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TelegramBotToken != "" || cfg.TelegramAPIURL != "https://api.telegram.org" || cfg.ChatMaxAttempts != 12 || cfg.ChatDeadLetterTTL != 720*time.Hour {
		t.Errorf("got token %q, API URL %q, attempts %d, dead-letter TTL %s; want none, https://api.telegram.org, 12, 720h",
			cfg.TelegramBotToken, cfg.TelegramAPIURL, cfg.ChatMaxAttempts, cfg.ChatDeadLetterTTL)
	}
	var b strings.Builder
	cfg.Print(&b)
	if !strings.Contains(b.String(), "JOBALERT_TELEGRAM_BOT_TOKEN=\n") {
		t.Errorf("got:\n%s\nwant an empty JOBALERT_TELEGRAM_BOT_TOKEN line (unset)", b.String())
	}
	for _, c := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"JOBALERT_TELEGRAM_API_URL": "api.telegram.org"}, `JOBALERT_TELEGRAM_API_URL: "api.telegram.org" must be an absolute http(s) URL`},
		{map[string]string{"JOBALERT_TELEGRAM_API_URL": "ftp://x:pw@h/"}, `JOBALERT_TELEGRAM_API_URL: "ftp://x:****@h/" must be an absolute http(s) URL`},
		{map[string]string{"JOBALERT_TELEGRAM_BOT_TOKEN": "no-colon-secretvalue"}, "JOBALERT_TELEGRAM_BOT_TOKEN: not a bot token"},
		{map[string]string{"JOBALERT_TELEGRAM_BOT_TOKEN": "1:a/secretvalue"}, "JOBALERT_TELEGRAM_BOT_TOKEN: not a bot token"},
		{map[string]string{"JOBALERT_CHAT_MAX_ATTEMPTS": "0"}, "JOBALERT_CHAT_MAX_ATTEMPTS: 0 must be between 1 and 100"},
		{map[string]string{"JOBALERT_CHAT_MAX_ATTEMPTS": "x"}, `JOBALERT_CHAT_MAX_ATTEMPTS: "x" is not a valid integer`},
		{map[string]string{"JOBALERT_CHAT_DEAD_LETTER_TTL": "10m"}, "JOBALERT_CHAT_DEAD_LETTER_TTL: 10m0s is shorter than an hour"},
		{map[string]string{"JOBALERT_CHAT_DEAD_LETTER_TTL": "forever"}, `JOBALERT_CHAT_DEAD_LETTER_TTL: "forever" is not a valid duration`},
	} {
		_, err := config.Load(env(c.vars), false)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: got %v, want one line %s...", c.vars, err, c.want)
		} else if strings.Contains(err.Error(), "secretvalue") {
			t.Errorf("%v: the error shows the token: %v", c.vars, err)
		}
	}
}
