// Package deploytest has no code: its test loads docker-compose.yml with
// the compose-spec loader, with the values of .env.example, and checks the
// invariants of running jobalert with docker compose (ports bound to
// 127.0.0.1, images in step with the tests' servers, credentials from
// .env, healthchecks, a stop grace period longer than the shutdown
// timeout). It is a package of its own so that no binary imports the
// loader.
package deploytest
