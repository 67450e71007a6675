// Package bench holds the benchmarks behind `jobalert bench`: a workload
// generator (gen) and the matcher benchmark (match) of issue 3. Each
// sub-benchmark is a function of (ctx, args, stdout); Main dispatches.
package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Command is one sub-benchmark: it parses its own flags from args and
// writes its report to stdout, the last line being its RESULT.
type Command func(ctx context.Context, args []string, stdout io.Writer) error

// Commands returns the sub-benchmarks by name. Add new ones here.
func Commands() map[string]Command {
	return map[string]Command{
		"gen":      Gen,
		"match":    Match,
		"pipeline": Pipeline,
		"smtp":     SMTP,
	}
}

// Main runs `jobalert bench NAME ARGS...`.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	cmds := Commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(args) == 0 {
		return fmt.Errorf("bench: name a benchmark: %s", strings.Join(names, ", "))
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("bench: unknown benchmark %q (have: %s)", args[0], strings.Join(names, ", "))
	}
	return cmd(ctx, args[1:], stdout)
}
