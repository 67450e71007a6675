// Package bench holds the benchmarks behind `jobalert bench`: a workload
// generator (gen) and the matcher benchmark (match) of issue 3. Each
// sub-benchmark is a function of (ctx, args, stdout); Main dispatches.
package bench

import (
	"context"
	"errors"
	"flag"
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
		"preview":  Preview,
		"smtp":     SMTP,
	}
}

// Main runs `jobalert bench NAME ARGS...`. `--help`, alone or after a
// benchmark's name, prints the usage to stdout and is not an error.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	cmds := Commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintf(stdout, "Usage: jobalert bench NAME [flags]   (NAME --help for its flags)\n\nBenchmarks: %s\nFigures and commands: docs/benchmarks.md\n",
			strings.Join(names, ", "))
		return nil
	}
	if len(args) == 0 {
		return fmt.Errorf("bench: name a benchmark: %s", strings.Join(names, ", "))
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		return fmt.Errorf("bench: unknown benchmark %q (have: %s)", args[0], strings.Join(names, ", "))
	}
	err := cmd(ctx, args[1:], stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil // the flag set printed the usage
	}
	return err
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}
