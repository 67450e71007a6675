package main

import (
	"context"
	"io"

	"github.com/jobalert/jobalert/bench"
)

// runBench runs the benchmarks of docs/benchmarks.md.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return bench.Main(ctx, args, stdout)
}
