// Command jobalert-bench runs `jobalert bench` without the rest of the
// binary: go run ./bench/cmd/jobalert-bench match --filters ... --jobs ...
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/jobalert/jobalert/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobalert bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	return bench.Main(ctx, args, stdout)
}
