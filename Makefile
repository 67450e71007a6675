# make test: the whole test suite against real NATS (embedded), a throw-away
# redis-server and the in-process SMTP sink, then the packages that support
# it again on a throw-away Redis Cluster (test-cluster). It needs only Go
# and, as root, apt-get (for redis-server when it is missing).
GO ?= go

.PHONY: test test-cluster test-short test-faults vet lint check-deploy fuzz bench build

build:
	$(GO) build -o bin/jobalert ./cmd/jobalert

# The store, notifier and end-to-end tests run a second time on a local
# Redis Cluster (3 primaries, 3 replicas): the same tests, two modes.
test: vet
	./scripts/with-redis.sh $(GO) test -race -count=1 -timeout 15m ./...
	$(MAKE) test-cluster

# test-cluster: the packages whose tests run on Redis Cluster too, again,
# on a throw-away local cluster of three primaries and three replicas
# (scripts/with-redis-cluster.sh; testenv.Redis and testenv.RedisEnv hand
# them a cluster client and JOBALERT_REDIS_CLUSTER). Every test of them
# runs (no -run filter). Tests that kill or move nodes start a cluster of
# their own (testenv.StartRedisCluster) and run in the step above.
CLUSTER_PKGS ?= ./store/ ./notifier/ ./cmd/jobalert/ ./webhook/ ./internal/liveness/
test-cluster:
	./scripts/with-redis-cluster.sh $(GO) test -race -count=1 -timeout 15m $(CLUSTER_PKGS)

test-short:
	./scripts/with-redis.sh $(GO) test -short -count=1 ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# lint: vet, staticcheck and deadcode (unreachable functions, tests
# included), at pinned versions fetched through the Go module proxy.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEADCODE ?= golang.org/x/tools/cmd/deadcode@v0.52.0
lint: vet
	$(GO) run $(STATICCHECK) ./...
	@out="$$($(GO) run $(DEADCODE) -test ./...)"; if [ -n "$$out" ]; then echo "deadcode:"; echo "$$out"; exit 1; fi

# check-deploy: promtool checks the alert rules (and runs their unit tests)
# and the scrape config under deploy/prometheus; installs promtool (Debian
# package prometheus) with apt-get when it is missing, as root.
check-deploy:
	./scripts/check-deploy.sh

fuzz:
	$(GO) test ./consumer -run '^$$' -fuzz FuzzDecodeEvent -fuzztime 30s
	./scripts/with-redis.sh $(GO) test ./api -run '^$$' -fuzz FuzzSignupBody -fuzztime 30s

# test-faults: the fault-injection suite (faults/, docs/operations.md): the
# built binary as child processes, a redis-server child with AOF it kills
# -9, an embedded NATS server it restarts, the SMTP sink's fault modes.
# Scenarios 8-10 run on a throw-away local Redis Cluster (redis-cli).
# Scenarios run four at a time; the whole suite takes about 1.5 minutes.
# with-redis.sh is there to install redis-server when it is missing.
test-faults: build
	./scripts/with-redis.sh env JOBALERT_FAULTS_BIN=$(CURDIR)/bin/jobalert \
		$(GO) test -tags faults -count=1 -v -parallel 4 -timeout 15m ./faults/

bench:
	./scripts/with-redis.sh $(GO) test -run '^$$' -bench . -benchmem ./matcher
