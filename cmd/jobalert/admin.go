package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

const adminUsage = `Usage: jobalert admin COMMAND [flags] [ARG]

Commands (each answers --help):
  find EMAIL                          every subscription of an address, and whether it is suppressed
  stats                               subscriptions by status and frequency, pending items, outbox, unsubscribe reasons
  dlq list [--after SEQ] [--limit N]  poison job events in JOBS_DLQ, oldest first
  dlq show SEQ                        one poison event, with its data
  dlq replay SEQ                      publish it again to JOBS and remove it from the DLQ
  job ID                              which job ID's events are recorded under, and why (reposts)
  suppressions count                  how many addresses are suppressed
  suppressions lift EMAIL             take an address off the suppression list

They call the admin API of a running service: --url (default
JOBALERT_PUBLIC_URL, else http://localhost:8080), with the bearer token in
JOBALERT_ADMIN_TOKEN. Answers are printed as JSON. An address goes in the
request body, never in a URL.
`

// adminCommand is one leaf of `jobalert admin`: its usage, how many
// positional arguments it takes, and the call it makes.
type adminCommand struct {
	usage string
	args  int
	flags func(fs *flag.FlagSet) func() url.Values // extra query flags
	call  func(args []string, query url.Values) (method, path string, body any)
}

var adminCommands = map[string]adminCommand{
	"find": {
		usage: "admin find [--url URL] EMAIL\n\nPrints every subscription of EMAIL and whether the address is suppressed.",
		args:  1,
		call: func(a []string, _ url.Values) (string, string, any) {
			return http.MethodPost, "/v1/admin/subscriptions/search", map[string]string{"email": a[0]}
		},
	},
	"stats": {
		usage: "admin stats [--url URL]\n\nPrints subscriptions by status and frequency, pending items, the due schedule,\nthe outbox, the suppression list's size and the answers to the question after\nan unsubscribe (unsubscribe_reasons). It reads every subscription.",
		call: func([]string, url.Values) (string, string, any) {
			return http.MethodGet, "/v1/admin/stats", nil
		},
	},
	"dlq list": {
		usage: "admin dlq list [--url URL] [--after SEQ] [--limit N]\n\nPrints poison job events of JOBS_DLQ, oldest first, without their data;\nnext_after is the --after of the next page.",
		flags: func(fs *flag.FlagSet) func() url.Values {
			after := fs.Uint64("after", 0, "only events after this DLQ sequence")
			limit := fs.Int("limit", 100, "events per page (1-1000)")
			return func() url.Values {
				return url.Values{"after": {strconv.FormatUint(*after, 10)}, "limit": {strconv.Itoa(*limit)}}
			}
		},
		call: func(_ []string, q url.Values) (string, string, any) {
			return http.MethodGet, "/v1/admin/jobs/dead-letters?" + q.Encode(), nil
		},
	},
	"dlq show": {
		usage: "admin dlq show [--url URL] SEQ\n\nPrints the poison job event at DLQ sequence SEQ, with its data.",
		args:  1,
		call: func(a []string, _ url.Values) (string, string, any) {
			return http.MethodGet, "/v1/admin/jobs/dead-letters/" + url.PathEscape(a[0]), nil
		},
	},
	"dlq replay": {
		usage: "admin dlq replay [--url URL] SEQ\n\nPublishes the event at DLQ sequence SEQ again to JOBS, on its original subject,\nand removes it from the DLQ. Still poison, it comes back under a new sequence.",
		args:  1,
		call: func(a []string, _ url.Values) (string, string, any) {
			return http.MethodPost, "/v1/admin/jobs/dead-letters/" + url.PathEscape(a[0]) + "/replay", nil
		},
	},
	"job": {
		usage: "admin job [--url URL] ID\n\nPrints the job the events of job id ID are recorded under (of) and why\n(reason: canonical_id, apply_url or same_role when ID was collapsed into an\nearlier job as its repost; empty when it is a job of its own), when that was\ndecided, and whether that job is closed (docs/events.md, Reposts).",
		args:  1,
		call: func(a []string, _ url.Values) (string, string, any) {
			return http.MethodPost, "/v1/admin/jobs/lookup", map[string]string{"id": a[0]}
		},
	},
	"suppressions count": {
		usage: "admin suppressions count [--url URL]\n\nPrints how many addresses are suppressed and how many have bounces counted\n(entries are keyed hashes: there is no address to list).",
		call: func([]string, url.Values) (string, string, any) {
			return http.MethodGet, "/v1/admin/suppressions", nil
		},
	},
	"suppressions lift": {
		usage: "admin suppressions lift [--url URL] EMAIL\n\nTakes EMAIL off the suppression list and forgets its bounces; it gets email\nagain only after a new sign-up and its confirmation.",
		args:  1,
		call: func(a []string, _ url.Values) (string, string, any) {
			return http.MethodPost, "/v1/admin/suppressions/lift", map[string]string{"email": a[0]}
		},
	},
}

// runAdmin is `jobalert admin ...`: one call to the admin API, its answer
// printed as indented JSON.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	name, rest := adminLeaf(args)
	cmd, ok := adminCommands[name]
	switch {
	case ok:
	case isHelp(name) || (name != "" && len(rest) > 0 && isHelp(rest[0])):
		fmt.Fprint(stdout, adminUsage)
		return nil
	case name == "" || name == "dlq" || name == "suppressions":
		fmt.Fprint(stderr, adminUsage)
		return errUsage
	default:
		fmt.Fprintf(stderr, "jobalert admin: unknown command %q\n\n%s", name, adminUsage)
		return errUsage
	}
	fs := newFlags("admin "+name, cmd.usage, stdout, stderr)
	base := getenv("JOBALERT_PUBLIC_URL")
	if base == "" {
		base = "http://localhost:8080"
	}
	urlFlag := fs.String("url", base, "base URL of the service (JOBALERT_PUBLIC_URL)")
	var query func() url.Values
	if cmd.flags != nil {
		query = cmd.flags(fs)
	}
	if err := parseFlags(fs, rest, cmd.args, stdout); err != nil {
		return err
	}
	if fs.NArg() != cmd.args {
		fmt.Fprintf(fs.Output(), "jobalert admin %s: want %d argument(s), got %d\n", name, cmd.args, fs.NArg())
		fs.Usage()
		return errUsage
	}
	tok := getenv("JOBALERT_ADMIN_TOKEN")
	if tok == "" {
		return errors.New("JOBALERT_ADMIN_TOKEN is not set: the admin API needs its bearer token")
	}
	var q url.Values
	if query != nil {
		q = query()
	}
	method, path, body := cmd.call(fs.Args(), q)
	answer, err := adminCall(ctx, strings.TrimSuffix(*urlFlag, "/"), tok, method, path, body)
	if err != nil {
		return err
	}
	_, err = stdout.Write(answer)
	return err
}

// adminLeaf splits args into a command name ("dlq list") and its
// arguments.
func adminLeaf(args []string) (string, []string) {
	if len(args) == 0 {
		return "", nil
	}
	switch args[0] {
	case "dlq", "suppressions":
		if len(args) == 1 || strings.HasPrefix(args[1], "-") {
			return args[0], args[1:]
		}
		return args[0] + " " + args[1], args[2:]
	}
	return args[0], args[1:]
}

func isHelp(a string) bool { return a == "help" || a == "-h" || a == "-help" || a == "--help" }

// adminCall makes one admin API call and returns its answer, indented. A
// non-2xx answer is an error naming the call and the API's message.
func adminCall(ctx context.Context, base, tok, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("admin API at %s: %w", base, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, base+path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error struct {
				Message string            `json:"message"`
				Fields  map[string]string `json:"fields"`
			} `json:"error"`
		}
		msg := strings.TrimSpace(string(raw))
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
			for f, m := range e.Error.Fields {
				msg += "; " + f + ": " + m
			}
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("%s %s: the answer is not JSON: %w", method, path, err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
