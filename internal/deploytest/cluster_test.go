package deploytest_test

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/jobalert/jobalert/config"
)

// loadProfile loads docker-compose.yml as `docker compose --profile
// profile` would.
func loadProfile(t *testing.T, env map[string]string, profile string) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(abs, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("jobalert", true)
		o.Profiles = []string{profile}
	})
	if err != nil {
		t.Fatalf("load docker-compose.yml --profile %s: %v", profile, err)
	}
	return p
}

var (
	clusterRedis = []string{"redis-c1", "redis-c2", "redis-c3", "redis-c4", "redis-c5", "redis-c6"}
	clusterNATS  = []string{"nats-c1", "nats-c2", "nats-c3"}
)

// The cluster profile has the shape of scripts/with-redis-cluster.sh and
// docs/scaling.md: six Redis nodes in cluster mode made three primaries
// with a replica each by a one-shot init service, three NATS servers in
// one cluster, and a jobalert configured for both, with the credentials
// of .env, nothing published but its page on 127.0.0.1. Without the
// profile, none of it runs.
func TestClusterProfile(t *testing.T) {
	env := filled(t)
	plain := mustLoad(t, env)
	for _, name := range append(append([]string{"redis-cluster-init", "jobalert-cluster"}, clusterRedis...), clusterNATS...) {
		if _, ok := plain.Services[name]; ok {
			t.Errorf("%s runs without --profile cluster, want it in the cluster profile only", name)
		}
	}

	p := loadProfile(t, env, "cluster")
	for _, name := range clusterRedis {
		s := service(t, p, name)
		for flag, want := range map[string]string{"--cluster-enabled": "yes", "--appendonly": "yes", "--appendfsync": "always",
			"--requirepass": env["REDIS_PASSWORD"], "--masterauth": env["REDIS_PASSWORD"]} {
			if !hasFlag(s.Command, flag, want) {
				t.Errorf("%s command: got %q, want %s %s", name, s.Command, flag, want)
			}
		}
		if !slices.Contains(s.Command, "--cluster-config-file") || len(s.Volumes) != 1 || s.Volumes[0].Target != "/data" {
			t.Errorf("%s: got command %q, volumes %+v, want its nodes.conf and AOF on a volume of its own at /data", name, s.Command, s.Volumes)
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s: got published ports %+v, want none", name, s.Ports)
		}
		if hc := s.HealthCheck; hc == nil || len(hc.Test) == 0 {
			t.Errorf("%s: got no healthcheck, want one", name)
		}
		if got := environment(s)["REDISCLI_AUTH"]; got != env["REDIS_PASSWORD"] {
			t.Errorf("%s REDISCLI_AUTH: got %q, want REDIS_PASSWORD", name, got)
		}
	}
	vols := map[string]string{}
	for _, name := range append(append([]string{}, clusterRedis...), clusterNATS...) {
		for _, v := range service(t, p, name).Volumes {
			if other, ok := vols[v.Source]; ok {
				t.Errorf("%s and %s share the volume %s, want one each", name, other, v.Source)
			}
			vols[v.Source] = name
		}
	}

	init := service(t, p, "redis-cluster-init")
	script := strings.Join(append(append([]string{}, init.Entrypoint...), init.Command...), " ")
	for _, want := range []string{"--cluster create", "--cluster-replicas 1", "--cluster-yes", "cluster_state:ok"} {
		if !strings.Contains(script, want) {
			t.Errorf("redis-cluster-init: got %q, want %q in it", script, want)
		}
	}
	for _, name := range clusterRedis {
		if !strings.Contains(script, name) {
			t.Errorf("redis-cluster-init: got %q, want node %s in the cluster", script, name)
		}
		if d, ok := init.DependsOn[name]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("redis-cluster-init depends_on %s: got %+v, want service_healthy", name, d)
		}
	}
	if init.Restart != "no" || environment(init)["REDISCLI_AUTH"] != env["REDIS_PASSWORD"] {
		t.Errorf("redis-cluster-init: got restart %q, REDISCLI_AUTH %q, want a one-shot (restart no) with REDIS_PASSWORD", init.Restart, environment(init)["REDISCLI_AUTH"])
	}

	names := map[string]bool{}
	for _, name := range clusterNATS {
		c := service(t, p, name).Command
		node := flagValue(c, "--name")
		names[node] = true
		if !slices.Contains(c, "-js") || flagValue(c, "--cluster_name") != "jobalert-cluster" || flagValue(c, "--cluster") == "" {
			t.Errorf("%s command: got %q, want -js, --cluster_name jobalert-cluster and a --cluster listen address", name, c)
		}
		if !hasFlag(c, "--user", env["NATS_USER"]) || !hasFlag(c, "--pass", env["NATS_PASSWORD"]) {
			t.Errorf("%s command: got %q, want --user and --pass from .env", name, c)
		}
		for _, other := range clusterNATS {
			if other != name && !strings.Contains(flagValue(c, "--routes"), "nats://"+other+":6222") {
				t.Errorf("%s --routes: got %q, want a route to %s", name, flagValue(c, "--routes"), other)
			}
		}
	}
	if len(names) != len(clusterNATS) {
		t.Errorf("NATS server names: got %v, want %d distinct", slices.Collect(maps.Keys(names)), len(clusterNATS))
	}

	ja := service(t, p, "jobalert-cluster")
	jenv := environment(ja)
	cfg, err := config.Load(func(k string) string { return jenv[k] }, true)
	if err != nil {
		t.Fatalf("jobalert-cluster's environment: got %v, want a valid configuration", err)
	}
	var seeds []string
	for _, a := range cfg.RedisCluster {
		host, _, _ := strings.Cut(a, ":")
		seeds = append(seeds, host)
	}
	if !slices.Equal(seeds, clusterRedis) {
		t.Errorf("jobalert-cluster JOBALERT_REDIS_CLUSTER: got %v, want the six nodes %v", cfg.RedisCluster, clusterRedis)
	}
	if u, err := url.Parse(cfg.RedisURL); err != nil || !hasPassword(u, env["REDIS_PASSWORD"]) {
		t.Errorf("jobalert-cluster JOBALERT_REDIS_URL: got %q, want it to lend REDIS_PASSWORD", cfg.RedisURL)
	}
	if cfg.StreamReplicas != 3 {
		t.Errorf("jobalert-cluster JOBALERT_STREAM_REPLICAS: got %d, want 3 (R3 on the three NATS servers)", cfg.StreamReplicas)
	}
	for _, name := range clusterNATS {
		want := fmt.Sprintf("nats://%s:%s@%s:4222", env["NATS_USER"], env["NATS_PASSWORD"], name)
		if !slices.Contains(strings.Split(cfg.NATSURL, ","), want) {
			t.Errorf("jobalert-cluster JOBALERT_NATS_URL: got %q, want %s among its URLs", cfg.NATSURL, want)
		}
	}
	if d, ok := ja.DependsOn["redis-cluster-init"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("jobalert-cluster depends_on redis-cluster-init: got %+v, want service_completed_successfully", d)
	}
	for _, name := range clusterNATS {
		if d, ok := ja.DependsOn[name]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("jobalert-cluster depends_on %s: got %+v, want service_healthy", name, d)
		}
	}
	if ja.StopGracePeriod == nil || time.Duration(*ja.StopGracePeriod) <= cfg.ShutdownTimeout {
		t.Errorf("jobalert-cluster stop_grace_period: got %v, want more than JOBALERT_SHUTDOWN_TIMEOUT %v", ja.StopGracePeriod, cfg.ShutdownTimeout)
	}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" || port.Published == "" {
				t.Errorf("%s: port %s:%d on %q, want an explicit port on 127.0.0.1", name, port.Published, port.Target, port.HostIP)
			}
		}
	}
	if got := ja.Ports; len(got) != 1 || got[0].Published == "8080" {
		t.Errorf("jobalert-cluster ports: got %+v, want one, not the single-node stack's 8080", got)
	}
}

func flagValue(cmd []string, flag string) string {
	for i := 0; i+1 < len(cmd); i++ {
		if cmd[i] == flag {
			return cmd[i+1]
		}
	}
	return ""
}
