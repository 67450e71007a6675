// Command jobalert is the one binary of the service: serve, demo, publish,
// bench, config, healthcheck and admin. main only calls run, which builds
// every dependency explicitly, so tests start the whole program in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
	_ "time/tzdata" // subscribers' time zones, even on images without tzdata

	"github.com/jobalert/jobalert/config"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) && !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "jobalert:", err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// errReported is a failure the command has already reported on stdout
// (publish --check): exit 1 without another message.
var errReported = errors.New("failures reported")

const usage = `jobalert: job alerts from NATS JetStream to email and webhooks

Usage:
  jobalert serve [--roles consumer,notifier,api]   run the service (all roles by default)
  jobalert demo                                    everything embedded on this machine
  jobalert publish [--subject jobs.created] FILE|- publish JSONL job events
  jobalert publish --check FILE|-                  check them, publish nothing
  jobalert bench gen|match|smtp|pipeline ...       benchmarks (docs/benchmarks.md)
  jobalert config                                  print the effective configuration
  jobalert migrate                                 move Redis from the unsharded key layout to shards (docs/scaling.md)
  jobalert healthcheck [URL]                       exit 0 when /readyz answers 200 (container healthchecks)
  jobalert admin find|stats|dlq|suppressions ...   the admin API (JOBALERT_ADMIN_TOKEN): subscriptions, DLQ, suppressions
  jobalert version | --version

Every command answers --help. Configuration comes from JOBALERT_*
environment variables; see README.md.
`

// newFlags returns a flag set for a command whose --help prints summary
// and the flags to stdout; parseFlags turns that into errHelp, which run
// answers with exit status 0.
func newFlags(name, summary string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: jobalert %s\n", summary)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(out, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// errHelp is a command's --help: its usage went to stdout, exit 0.
var errHelp = errors.New("help")

// parseFlags parses args into fs and allows at most maxArgs positional
// arguments (-1: any). --help prints the usage to stdout and returns
// errHelp; an unknown flag or an extra argument is errUsage, with the
// usage on stderr.
func parseFlags(fs *flag.FlagSet, args []string, maxArgs int, stdout io.Writer) error {
	if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" }) {
		fs.SetOutput(stdout)
		fs.Usage()
		return errHelp
	}
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag set printed the error and the usage
	}
	if maxArgs >= 0 && fs.NArg() > maxArgs {
		fmt.Fprintf(fs.Output(), "jobalert %s: unexpected argument %q\n", fs.Name(), fs.Arg(maxArgs))
		fs.Usage()
		return errUsage
	}
	return nil
}

// run is the whole program. getenv is nil to read the process environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, getenv, stdin, stdout, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, getenv, stdout, stderr)
	case "publish":
		return runPublish(ctx, rest, getenv, stdin, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, getenv, stdout, stderr)
	case "config":
		fs := newFlags("config", "config\n\nPrints the effective configuration, secrets masked.", stdout, stderr)
		if err := parseFlags(fs, rest, 0, stdout); err != nil {
			return err
		}
		cfg, err := config.Load(getenv, false)
		if err != nil {
			return fmt.Errorf("configuration:\n%w", err)
		}
		cfg.Print(stdout)
		return nil
	case "healthcheck":
		return runHealthcheck(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stdout, stderr)
	case "admin":
		return runAdmin(ctx, rest, getenv, stdout, stderr)
	case "version", "--version", "-version":
		if cmd == "version" {
			if err := parseFlags(newFlags("version", "version", stdout, stderr), rest, 0, stdout); err != nil {
				return err
			}
		}
		fmt.Fprintln(stdout, "jobalert", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "jobalert: unknown command %q\n\n%s", cmd, usage)
	return errUsage
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "serve [--roles consumer,notifier,api]\n\nRuns the service; configuration from JOBALERT_* variables (README.md).", stdout, stderr)
	rolesFlag := fs.String("roles", "consumer,notifier,api", "comma-separated roles: consumer, notifier, api")
	if err := parseFlags(fs, args, 0, stdout); err != nil {
		return err
	}
	roles, err := parseRoles(*rolesFlag)
	if err != nil {
		return err
	}
	cfg, err := config.Load(getenv, true)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, roles, log, appDeps{})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// roles says which parts of the service this process runs.
type roles struct{ consumer, notifier, api bool }

func parseRoles(s string) (roles, error) {
	var r roles
	for _, name := range strings.Split(s, ",") {
		switch strings.TrimSpace(name) {
		case "consumer":
			r.consumer = true
		case "notifier":
			r.notifier = true
		case "api":
			r.api = true
		case "":
		default:
			return r, fmt.Errorf("--roles: unknown role %q (roles: consumer, notifier, api)", name)
		}
	}
	if !r.consumer && !r.notifier && !r.api {
		return r, errors.New("--roles: name at least one of consumer, notifier, api")
	}
	return r, nil
}

func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, error) {
	level, err := cfg.Level()
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// runHealthcheck asks a running service whether it is ready; container
// images without a shell use it as their healthcheck.
func runHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("healthcheck", "healthcheck [URL]\n\nExits 0 when URL (default http://127.0.0.1:8080/readyz) answers 200.", stdout, stderr)
	if err := parseFlags(fs, args, 1, stdout); err != nil {
		return err
	}
	url := "http://127.0.0.1:8080/readyz"
	if fs.NArg() > 0 {
		url = fs.Arg(0)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, "ready")
	return nil
}
