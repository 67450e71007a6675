package deploytest_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/jobalert/jobalert/config"
)

// root is the repository, where docker-compose.yml, .env.example and
// go.mod are.
var root = filepath.Join("..", "..")

// secrets are the variables of .env.example that must be given in .env:
// empty in the example and required by docker-compose.yml.
var secrets = []string{"JOBALERT_SECRET", "NATS_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}

// envExample reads .env.example.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	env, err := dotenv.Read(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatalf(".env.example: %v", err)
	}
	return env
}

// filled returns .env.example's values with every empty one set to a
// fresh random value, as the README's awk line does.
func filled(t *testing.T) map[string]string {
	t.Helper()
	env := envExample(t)
	for k, v := range env {
		if v == "" {
			b := make([]byte, 24)
			_, _ = rand.Read(b)
			env[k] = hex.EncodeToString(b)
		}
	}
	return env
}

// load loads docker-compose.yml as docker compose would with env as its
// whole environment (the shell's and .env's variables).
func load(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(abs, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("jobalert", true) })
}

func mustLoad(t *testing.T, env map[string]string) *types.Project {
	t.Helper()
	p, err := load(t, env)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml: got services %v, want one named %s", slices.Sorted(maps.Keys(p.Services)), name)
	}
	return s
}

func environment(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// imageTag splits "repo:tag".
func imageTag(image string) (repo, tag string) {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, ""
	}
	return image[:i], image[i+1:]
}

// goModVersion returns the version of module in go.mod's require lines.
func goModVersion(t *testing.T, module string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1]
		}
	}
	t.Fatalf("go.mod: no require line for %s", module)
	return ""
}

// The jobalert service's environment is a valid configuration, and compose
// waits longer than its shutdown timeout before it kills the container.
func TestStopGracePeriodExceedsShutdownTimeout(t *testing.T) {
	s := service(t, mustLoad(t, filled(t)), "jobalert")
	env := environment(s)
	cfg, err := config.Load(func(k string) string { return env[k] }, true)
	if err != nil {
		t.Fatalf("jobalert's environment in docker-compose.yml: got %v, want a valid configuration", err)
	}
	if s.StopGracePeriod == nil {
		t.Fatalf("jobalert stop_grace_period: got none (10s), want more than JOBALERT_SHUTDOWN_TIMEOUT %v", cfg.ShutdownTimeout)
	}
	if got := time.Duration(*s.StopGracePeriod); got <= cfg.ShutdownTimeout {
		t.Errorf("jobalert stop_grace_period: got %v, want more than JOBALERT_SHUTDOWN_TIMEOUT %v", got, cfg.ShutdownTimeout)
	}
}

// Every published port is bound to the loopback address; NATS's client
// port is published (the README's publish step needs it), the metrics
// port is not.
func TestPublishedPortsOnLoopback(t *testing.T) {
	p := mustLoad(t, filled(t))
	published := map[string][]uint32{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.Published == "" {
				t.Errorf("%s: port %d: got a random host port, want an explicit 127.0.0.1:PORT:%d", name, port.Target, port.Target)
			}
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %s:%d: got host IP %q, want 127.0.0.1", name, port.Published, port.Target, port.HostIP)
			}
			published[name] = append(published[name], port.Target)
		}
	}
	want := map[string][]uint32{"nats": {4222}, "jobalert": {8080}, "mailpit": {8025}, "prometheus": {9090}, "grafana": {3000}}
	for name, ports := range want {
		for _, port := range ports {
			if !slices.Contains(published[name], port) {
				t.Errorf("%s: got published ports %v, want %d published on 127.0.0.1", name, published[name], port)
			}
		}
	}
	for _, name := range []string{"redis"} {
		if len(published[name]) > 0 {
			t.Errorf("%s: got published ports %v, want none", name, published[name])
		}
	}

	s := service(t, p, "jobalert")
	addr := environment(s)["JOBALERT_METRICS_ADDR"]
	_, portStr, err := splitAddr(addr)
	if err != nil {
		t.Fatalf("jobalert JOBALERT_METRICS_ADDR: got %q, want an address such as :9090", addr)
	}
	metrics, _ := strconv.Atoi(portStr)
	if slices.Contains(published["jobalert"], uint32(metrics)) {
		t.Errorf("jobalert: got the metrics port %d published, want it reachable from Prometheus only", metrics)
	}
	httpAddr := environment(s)["JOBALERT_HTTP_ADDR"]
	if _, hp, err := splitAddr(httpAddr); err != nil || hp == portStr {
		t.Errorf("jobalert: got JOBALERT_HTTP_ADDR %q and JOBALERT_METRICS_ADDR %q, want two ports", httpAddr, addr)
	}
}

func splitAddr(addr string) (host, port string, err error) {
	u, err := url.Parse("tcp://" + addr)
	if err != nil {
		return "", "", err
	}
	if _, err := strconv.ParseUint(u.Port(), 10, 16); err != nil {
		return "", "", err
	}
	return u.Hostname(), u.Port(), nil
}

// The images run the servers the tests run: the nats-server version of
// go.mod, and Redis of Debian 12's 7.0 line.
func TestImageVersions(t *testing.T) {
	p := mustLoad(t, filled(t))
	want := strings.TrimPrefix(goModVersion(t, "github.com/nats-io/nats-server/v2"), "v")
	repo, tag := imageTag(service(t, p, "nats").Image)
	if repo != "nats" || (tag != want && !strings.HasPrefix(tag, want+"-")) {
		t.Errorf("nats image: got %q, want nats:%s or nats:%s-<variant> (github.com/nats-io/nats-server/v2 %s in go.mod)", service(t, p, "nats").Image, want, want, want)
	}
	repo, tag = imageTag(service(t, p, "redis").Image)
	if repo != "redis" || !(tag == "7.0" || strings.HasPrefix(tag, "7.0.") || strings.HasPrefix(tag, "7.0-")) {
		t.Errorf("redis image: got %q, want redis:7.0 (Debian 12's redis-server 7.0.15, which the tests run)", service(t, p, "redis").Image)
	}
	for name, s := range p.Services {
		if s.Build != nil {
			continue
		}
		if _, tag := imageTag(s.Image); tag == "" || tag == "latest" {
			t.Errorf("%s image: got %q, want a pinned version", name, s.Image)
		}
	}
}

// The servers and jobalert have healthchecks, and jobalert starts once its
// dependencies are healthy.
func TestHealthchecks(t *testing.T) {
	p := mustLoad(t, filled(t))
	for _, name := range []string{"nats", "redis", "jobalert", "mailpit", "prometheus", "grafana"} {
		hc := service(t, p, name).HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
			t.Errorf("%s: got healthcheck %+v, want one", name, hc)
		}
	}
	deps := service(t, p, "jobalert").DependsOn
	for _, name := range []string{"nats", "redis", "mailpit"} {
		if d, ok := deps[name]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("jobalert depends_on %s: got %+v, want condition service_healthy", name, d)
		}
	}
}

// Credentials come from .env: .env.example holds none, compose refuses to
// start without each, and each reaches the server and jobalert's URLs.
func TestCredentialsFromEnv(t *testing.T) {
	example := envExample(t)
	for _, k := range secrets {
		v, ok := example[k]
		if !ok || v != "" {
			t.Errorf(".env.example %s: got %q (present %v), want it listed and empty", k, v, ok)
		}
	}
	for _, k := range secrets {
		env := filled(t)
		env[k] = ""
		if _, err := load(t, env); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("docker-compose.yml without %s: got %v, want an error naming it", k, err)
		}
	}

	for range 2 { // two sets of values: nothing is a constant
		env := filled(t)
		p := mustLoad(t, env)

		nats := service(t, p, "nats").Command
		if !hasFlag(nats, "--user", env["NATS_USER"]) || !hasFlag(nats, "--pass", env["NATS_PASSWORD"]) {
			t.Errorf("nats command: got %q, want --user and --pass from NATS_USER and NATS_PASSWORD", nats)
		}
		redis := service(t, p, "redis").Command
		if !hasFlag(redis, "--requirepass", env["REDIS_PASSWORD"]) {
			t.Errorf("redis command: got %q, want --requirepass from REDIS_PASSWORD", redis)
		}
		if got := environment(service(t, p, "redis"))["REDISCLI_AUTH"]; got != env["REDIS_PASSWORD"] {
			t.Errorf("redis REDISCLI_AUTH (for the healthcheck): got %q, want REDIS_PASSWORD", got)
		}

		ja := environment(service(t, p, "jobalert"))
		if u, err := url.Parse(ja["JOBALERT_NATS_URL"]); err != nil || u.User.Username() != env["NATS_USER"] || !hasPassword(u, env["NATS_PASSWORD"]) {
			t.Errorf("jobalert JOBALERT_NATS_URL: got %q, want nats://NATS_USER:NATS_PASSWORD@nats:4222", ja["JOBALERT_NATS_URL"])
		}
		if u, err := url.Parse(ja["JOBALERT_REDIS_URL"]); err != nil || !hasPassword(u, env["REDIS_PASSWORD"]) {
			t.Errorf("jobalert JOBALERT_REDIS_URL: got %q, want redis://:REDIS_PASSWORD@redis:6379/0", ja["JOBALERT_REDIS_URL"])
		}
		for _, k := range []string{"JOBALERT_SECRET", "JOBALERT_ADMIN_TOKEN"} {
			if ja[k] != env[k] {
				t.Errorf("jobalert %s: got %q, want the value of .env", k, ja[k])
			}
		}
		if got := environment(service(t, p, "grafana"))["GF_SECURITY_ADMIN_PASSWORD"]; got != env["GRAFANA_ADMIN_PASSWORD"] {
			t.Errorf("grafana GF_SECURITY_ADMIN_PASSWORD: got %q, want GRAFANA_ADMIN_PASSWORD", got)
		}
	}

	b, err := os.ReadFile(filepath.Join(root, ".gitignore"))
	if err != nil || !slices.ContainsFunc(strings.Split(string(b), "\n"), func(l string) bool { return l == ".env" || l == "/.env" }) {
		t.Errorf(".gitignore: got %v, want .env ignored", err)
	}
}

func hasFlag(cmd []string, flag, value string) bool {
	for i := 0; i+1 < len(cmd); i++ {
		if cmd[i] == flag && cmd[i+1] == value {
			return true
		}
	}
	return false
}

func hasPassword(u *url.URL, want string) bool {
	p, ok := u.User.Password()
	return ok && p == want
}

// Prometheus and Grafana are provisioned from deploy/, read-only, and
// Prometheus scrapes jobalert's metrics address.
func TestMonitoringProvisionedFromDeploy(t *testing.T) {
	p := mustLoad(t, filled(t))
	abs, _ := filepath.Abs(root)
	mounts := map[string][][2]string{
		"prometheus": {{"deploy/prometheus", "/etc/prometheus"}},
		"grafana": {
			{"deploy/grafana/provisioning", "/etc/grafana/provisioning"},
			{"deploy/grafana/jobalert.json", "/var/lib/grafana/dashboards/jobalert/jobalert.json"},
		},
	}
	_, deployErr := os.Stat(filepath.Join(root, "deploy"))
	for name, want := range mounts {
		vols := service(t, p, name).Volumes
		for _, m := range want {
			src := filepath.Join(abs, m[0])
			if !slices.ContainsFunc(vols, func(v types.ServiceVolumeConfig) bool {
				return v.Type == types.VolumeTypeBind && v.Source == src && v.Target == m[1] && v.ReadOnly
			}) {
				t.Errorf("%s volumes: got %+v, want ./%s mounted read-only at %s", name, vols, m[0], m[1])
			}
			// A missing source would be created as an empty directory by
			// docker; once deploy/ exists, every source must.
			if deployErr == nil {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("%s: bind mount source ./%s: %v", name, m[0], err)
				}
			}
		}
	}
	if deployErr != nil {
		t.Logf("deploy/ is not there: the bind mount sources are not checked (%v)", deployErr)
		return
	}
	// Prometheus scrapes the port jobalert serves its metrics on, and
	// Grafana's dashboard provider reads the directory the dashboard is
	// mounted in.
	var addr string
	if v := service(t, p, "jobalert").Environment["JOBALERT_METRICS_ADDR"]; v != nil {
		addr = *v
	}
	_, port, _ := strings.Cut(addr, ":")
	scrape, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	if err != nil || !strings.Contains(string(scrape), `"jobalert:`+port+`"`) {
		t.Errorf("deploy/prometheus/prometheus.yml: want a scrape target jobalert:%s (JOBALERT_METRICS_ADDR) (%v)", port, err)
	}
	provider, err := os.ReadFile(filepath.Join(root, "deploy/grafana/provisioning/dashboards/jobalert.yml"))
	if err != nil || !strings.Contains(string(provider), "path: /var/lib/grafana/dashboards/jobalert") {
		t.Errorf("grafana dashboard provider: want path /var/lib/grafana/dashboards/jobalert, where compose mounts the dashboard (%v)", err)
	}
}

// The build context leaves out the secrets, the repository and what the
// build does not need, and keeps what it does.
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.TrimSuffix(strings.TrimPrefix(l, "/"), "/"))
		}
	}
	for _, want := range []string{".env", ".git", "bin", "**/*.test"} {
		if !slices.Contains(patterns, want) {
			t.Errorf(".dockerignore: got %q, want %q among them", patterns, want)
		}
	}
	if !slices.Contains(patterns, "docs") && !slices.Contains(patterns, "docs/screenshots") {
		t.Errorf(".dockerignore: got %q, want docs/screenshots left out", patterns)
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd/jobalert/main.go", "templates/templates.go", "templates/email", "consumer/event.go"} {
		for _, pat := range patterns {
			if ok, _ := filepath.Match(pat, keep); ok || pat == keep || strings.HasPrefix(keep, pat+"/") || pat == "*" || pat == "**" || pat == "**/*.go" || pat == "*.go" {
				t.Errorf(".dockerignore: %q leaves out %s, which the build needs", pat, keep)
			}
		}
	}
}
