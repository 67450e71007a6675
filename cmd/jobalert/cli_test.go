package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// Every command answers --help with its usage on stdout and no error;
// unknown flags and extra arguments are usage errors.
func TestCLIHelpAndBadArguments(t *testing.T) {
	getenv := func(string) string { return "" }
	for _, args := range [][]string{
		{"--help"}, {"help"}, {"serve", "--help"}, {"demo", "--help"}, {"publish", "--help"}, {"bench", "--help"},
		{"bench", "gen", "--help"}, {"bench", "match", "-h"}, {"config", "--help"}, {"healthcheck", "--help"}, {"version", "--help"},
		{"admin", "--help"}, {"admin", "help"}, {"admin", "dlq", "--help"}, {"admin", "find", "--help"}, {"admin", "stats", "-h"},
		{"admin", "dlq", "list", "--help"}, {"admin", "dlq", "show", "--help"}, {"admin", "dlq", "replay", "--help"},
		{"admin", "suppressions", "count", "--help"}, {"admin", "suppressions", "lift", "--help"}, {"admin", "job", "--help"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, getenv, strings.NewReader(""), &out, &errOut)
		if err != nil || !strings.Contains(strings.ToLower(out.String()), "usage") {
			t.Errorf("%v: got err %v, stdout %q, want no error and the usage on stdout", args, err, out.String())
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, getenv, nil, &out, &bytes.Buffer{}); err != nil || out.String() != "jobalert "+version+"\n" {
			t.Errorf("%v: got %q %v, want %q", args, out.String(), err, "jobalert "+version+"\n")
		}
	}
	for _, args := range [][]string{
		{"config", "--bogus"}, {"serve", "--bogus"}, {"serve", "extra"}, {"demo", "extra"}, {"healthcheck", "a", "b"},
		{"version", "extra"}, {"nope"}, {},
		{"admin"}, {"admin", "nope"}, {"admin", "dlq"}, {"admin", "dlq", "nope"}, {"admin", "find"}, {"admin", "find", "a@example.com", "b@example.com"},
		{"admin", "stats", "extra"}, {"admin", "dlq", "list", "--bogus"}, {"admin", "suppressions", "lift"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, getenv, strings.NewReader(""), &out, &errOut)
		if !errors.Is(err, errUsage) || errOut.Len() == 0 {
			t.Errorf("%v: got err %v, stderr %q, want a usage error explained on stderr", args, err, errOut.String())
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"bench", "nope"}, getenv, nil, &out, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `unknown benchmark "nope"`) {
		t.Errorf("bench nope: got %v, want an unknown benchmark error", err)
	}
}
