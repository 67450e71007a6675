package testenv

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSCluster starts n embedded nats-servers with JetStream in one cluster
// (routes between them on free loopback ports, server names n1..nN, one
// cluster name, each its own store directory) and waits until every
// server is ready and JetStream has elected its meta leader, so that R3
// streams can be created. Each server is shut down at cleanup (shutting
// one down earlier, to kill it, is fine).
func NATSCluster(tb testing.TB, n int) []*server.Server {
	tb.Helper()
	ports := make([]int, n)
	var routes []string
	for i := range ports {
		ports[i] = FreePort(tb)
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	dir := tb.TempDir()
	servers := make([]*server.Server, n)
	for i := range servers {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "jobalert-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			tb.Fatalf("new nats server n%d: %v", i+1, err)
		}
		s.Start()
		tb.Cleanup(s.Shutdown)
		servers[i] = s
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			tb.Fatalf("nats server %s not ready in 10s", s.Name())
		}
	}
	Eventually(tb, 30*time.Second, func() bool {
		leaders := 0
		for _, s := range servers {
			if !s.JetStreamIsCurrent() || s.NumRoutes() < n-1 {
				return false
			}
			if s.JetStreamIsLeader() {
				leaders++
			}
		}
		return leaders == 1
	}, "the %d nats servers forming a JetStream cluster with one meta leader", n)
	return servers
}

// NATSClusterURLs is the client URLs of servers, comma-separated, as
// JOBALERT_NATS_URL takes them.
func NATSClusterURLs(servers []*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}
