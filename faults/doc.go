// Package faults is jobalert's fault-injection suite: it runs the real
// `jobalert serve` binary as child processes against a real redis-server
// child (AOF, appendfsync always), an embedded NATS JetStream server and the
// in-process SMTP sink, injects the failures of production (kill -9 of the
// service or of Redis, a NATS restart, SMTP 421s, stalls and resets,
// poison events, SIGTERM under load) and checks the guarantees of
// docs/redis.md and docs/digests.md: every expected (subscription, job) pair delivered, none twice
// outside the documented SMTP window.
//
// The tests are behind the build tag "faults"; run them with
// `make test-faults`. docs/operations.md explains what each scenario shows.
package faults
