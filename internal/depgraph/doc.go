// Package depgraph has no code: its test holds the allowed import graph of
// the project's packages and checks `go list` against it.
//
// The layering follows the data flow: job events -> consumer -> store ->
// notifier / webhook -> api, with the shared model (matcher, jobevent) and
// small leaves (schedule, token, templates, config, internal/grace) below
// every stage, and cmd/jobalert (plus the bench tools) wiring everything.
// A stage never imports an earlier one: the consumer hands its batches to
// a Recorder interface that the store satisfies without importing it, and
// cmd/jobalert/wiring.go asserts that. Peers (notifier, webhook) do not
// import each other.
package depgraph
