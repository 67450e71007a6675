package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

// gatedRecorder holds every Record call until open is closed, so that a
// backlog builds up in the stream; entered is closed at the first call.
type gatedRecorder struct {
	consumer.Recorder
	open, entered chan struct{}
	once          sync.Once
}

func (g *gatedRecorder) Record(ctx context.Context, batch []jobevent.Matched) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Recorder.Record(ctx, batch)
}

// The pipeline on a three-node NATS cluster with R3 streams: the leader of
// the JOBS stream is shut down mid-backlog (the consumer holding its first
// batches, the rest of the backlog in the stream, more published after
// the kill), and every event is still matched and delivered exactly once
// (each job listed in exactly one email).
func TestNATSClusterStreamLeaderKilledMidBacklog(t *testing.T) {
	servers := testenv.NATSCluster(t, 3)
	gate := &gatedRecorder{open: make(chan struct{}), entered: make(chan struct{})}
	opened := false
	release := func() {
		if !opened {
			opened = true
			close(gate.open)
		}
	}
	t.Cleanup(release)
	env := testenv.RedisEnv(t) // the Redis Cluster under with-redis-cluster.sh
	for k, v := range map[string]string{
		"JOBALERT_NATS_URL":        testenv.NATSClusterURLs(servers),
		"JOBALERT_STREAM_REPLICAS": "3",
		"JOBALERT_DIGEST_CAP":      "500",
		"JOBALERT_CONSUMER_BATCH":  "8",
	} {
		env[k] = v
	}
	s := startStack(t, stackOpts{nats: servers[0], env: env, wrapRecorder: func(r consumer.Recorder) consumer.Recorder {
		gate.Recorder = r
		return gate
	}})
	ctx := context.Background()
	info := streamInfo(t, s.js, "JOBS")
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("JOBS: got %d replicas (cluster %+v), want R3 with a leader and 2 replicas", info.Config.Replicas, info.Cluster)
	}
	s.subscribe("ada@example.com", matcher.Filter{Keywords: "backend"})

	const perHalf = 60
	id := func(i int) string { return fmt.Sprintf("nc-%03d", i) }
	publish := func(i int) {
		t.Helper()
		b := fmt.Sprintf(`{"id":%q,"title":"Backend Engineer %d","company":"Acme","url":"https://jobs.example.com/%s"}`, id(i), i, id(i))
		// A publish while the stream elects a new leader fails: retried,
		// deduplicated by its message id.
		var err error
		testenv.Eventually(t, 30*time.Second, func() bool {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err = s.js.Publish(pctx, "jobs.created", []byte(b), jetstream.WithMsgID(id(i)))
			return err == nil
		}, "publish %s: %v", id(i), &err)
	}
	for i := range perHalf {
		publish(i)
	}
	// Mid-backlog: the consumer holds its first batches, the rest waits.
	select {
	case <-gate.entered:
	case <-time.After(15 * time.Second):
		t.Fatal("the consumer recorded nothing within 15s")
	}
	c, err := s.js.Consumer(ctx, "JOBS", "jobalert")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(ctx)
	if err != nil || ci.NumPending == 0 {
		t.Fatalf("consumer info before the kill: got %+v, %v, want events still pending in the stream", ci, err)
	}
	leader := streamInfo(t, s.js, "JOBS").Cluster.Leader
	var killed *server.Server
	for _, srv := range servers {
		if srv.Name() == leader {
			killed = srv
		}
	}
	if killed == nil {
		t.Fatalf("JOBS leader %q is none of the servers", leader)
	}
	killed.Shutdown()
	release()
	t.Logf("shut down %s, the JOBS leader, with %d events in the stream not yet delivered and %d awaiting their ack",
		leader, ci.NumPending, ci.NumAckPending)
	for i := perHalf; i < 2*perHalf; i++ {
		publish(i)
	}
	testenv.Eventually(t, 60*time.Second, func() bool {
		for i := range 2 * perHalf {
			if s.mailsWith("ada@example.com", "https://jobs.example.com/"+id(i)) == 0 {
				return false
			}
		}
		return true
	}, "not every job was emailed after the JOBS leader %s was shut down", leader)
	if info := streamInfo(t, s.js, "JOBS"); info.Cluster.Leader == leader || info.Cluster.Leader == "" {
		t.Errorf("JOBS leader after the kill: got %q, want another server than %s", info.Cluster.Leader, leader)
	}
	for i := range 2 * perHalf {
		if n := s.mailsWith("ada@example.com", "https://jobs.example.com/"+id(i)); n != 1 {
			t.Errorf("job %s: listed in %d emails, want exactly 1", id(i), n)
		}
	}
	if t.Failed() {
		var subjects []string
		for _, m := range s.sink.To("ada@example.com") {
			subjects = append(subjects, m.Subject)
		}
		t.Logf("emails: %s", strings.Join(subjects, "; "))
	}
}

func streamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	var err error
	testenv.Eventually(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var st jetstream.Stream
		if st, err = js.Stream(ctx, name); err != nil {
			return false
		}
		info, err = st.Info(ctx)
		return err == nil && info.Cluster != nil && info.Cluster.Leader != ""
	}, "stream %s info with a leader: %v", name, &err)
	return info
}
