package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/jobalert/jobalert/internal/workload"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
)

// smtpJobsPerDigest is how many jobs a benchmark digest lists (issue 5).
const smtpJobsPerDigest = 10

// SMTP implements `jobalert bench smtp --addr HOST:PORT --digests N
// [--pool P] [--senders S] [--naive]` (issue 5). It renders N realistic
// digests (10 generated jobs each, through notifier.Renderer) and sends
// them through notifier.Mailer, the real sending path: a pool of P reused
// connections with S concurrent senders (default P). Each sender renders
// and sends, as the digester's workers do. With --naive it instead sends
// each email on a fresh go-mail client (dial, EHLO, send, QUIT), the
// baseline; its senders default to 1 (a plain loop). With --prerender the
// digests are rendered before the clock starts, timing the sending path
// alone. It reports emails/s, the average message size, and a RESULT line.
func SMTP(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench smtp", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "", "SMTP server HOST:PORT, plain text, no auth (required)")
	n := fs.Int("digests", 1000, "digests to render and send")
	pool := fs.Int("pool", 4, "SMTP connections kept open and reused (JOBALERT_SMTP_POOL)")
	senders := fs.Int("senders", 0, "concurrent senders; 0: the pool size, or 1 with --naive")
	naive := fs.Bool("naive", false, "baseline: one go-mail client (dial, send, close) per email")
	prerender := fs.Bool("prerender", false, "render every digest before the clock starts: time the sending path alone")
	timeout := fs.Duration("timeout", 30*time.Second, "SMTP timeout per step")
	seed := fs.Uint64("seed", 1, "generator seed")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the timed send loop to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("bench smtp: --addr HOST:PORT is required: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("bench smtp: --addr port %q: %w", portStr, err)
	}
	if *n <= 0 || *pool <= 0 {
		return errors.New("bench smtp: --digests and --pool must be positive")
	}
	if *senders <= 0 {
		*senders = *pool
		if *naive {
			*senders = 1
		}
	}

	r, err := notifier.NewRenderer(notifier.RenderConfig{
		From: "jobalert <alerts@jobalert.example>", PublicURL: "https://jobalert.example",
	})
	if err != nil {
		return err
	}
	digests := newBenchDigests(*n, *seed)

	// Untimed pass: render every digest once to measure size and render
	// speed on their own.
	var size countWriter
	var msgs []*mail.Msg
	if *prerender {
		msgs = make([]*mail.Msg, *n)
	}
	renderStart := time.Now()
	for i := range digests {
		msg, err := r.Digest(digests[i])
		if err != nil {
			return fmt.Errorf("bench smtp: render: %w", err)
		}
		if msgs != nil {
			msgs[i] = msg
		}
		if _, err := msg.WriteTo(&size); err != nil {
			return fmt.Errorf("bench smtp: write message: %w", err)
		}
	}
	renderTime := time.Since(renderStart)
	avgSize := float64(size.n) / float64(*n)

	var send func(ctx context.Context, msg *mail.Msg) error
	var mailer *notifier.Mailer
	mode := "pool"
	if *naive {
		mode = "naive"
	}
	if *prerender {
		mode += "-prerendered"
	}
	if *naive {
		send = func(ctx context.Context, msg *mail.Msg) error {
			c, err := mail.NewClient(host, mail.WithPort(port), mail.WithTLSPolicy(mail.NoTLS),
				mail.WithTimeout(*timeout), mail.WithHELO("bench.jobalert.example"))
			if err != nil {
				return err
			}
			return c.DialAndSendWithContext(ctx, msg) // dial, EHLO, send, QUIT
		}
	} else {
		mailer, err = notifier.NewMailer(notifier.MailerConfig{Host: host, Port: port, TLS: "none",
			Pool: *pool, Timeout: *timeout, HELO: "bench.jobalert.example"})
		if err != nil {
			return err
		}
		defer mailer.Close()
		send = mailer.Send
	}

	fmt.Fprintf(stdout, "bench smtp: %s mode, %d digests of %d jobs to %s, pool %d, %d senders\n",
		mode, *n, smtpJobsPerDigest, *addr, *pool, *senders)
	fmt.Fprintf(stdout, "render: %d digests in %v (%.0f/s), avg message %.0f bytes\n",
		*n, renderTime.Round(time.Millisecond), float64(*n)/renderTime.Seconds(), avgSize)

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var (
		next, sent, failed atomic.Int64
		firstErr           error
		errOnce            sync.Once
		wg                 sync.WaitGroup
	)
	start := time.Now()
	for range *senders {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				var msg *mail.Msg
				var err error
				if msgs != nil {
					msg = msgs[i]
				} else {
					msg, err = r.Digest(digests[i])
				}
				if err == nil {
					err = send(ctx, msg)
				}
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return err
	}
	rate := float64(sent.Load()) / elapsed.Seconds()
	dials := int64(sent.Load() + failed.Load())
	if mailer != nil {
		dials = mailer.Stats().Dials
	}
	fmt.Fprintf(stdout, "sent %d emails in %v: %.0f emails/s, %.2f MB/s, %d connections opened, %d failed\n",
		sent.Load(), elapsed.Round(time.Millisecond), rate, rate*avgSize/1e6, dials, failed.Load())
	if firstErr != nil {
		fmt.Fprintf(stdout, "first error: %v\n", firstErr)
	}
	fmt.Fprintf(stdout, "RESULT mode=%s digests=%d jobs_per_digest=%d pool=%d senders=%d sent=%d failed=%d elapsed_ms=%d emails_per_s=%.1f avg_msg_bytes=%.0f render_per_s=%.0f connections=%d\n",
		mode, *n, smtpJobsPerDigest, *pool, *senders, sent.Load(), failed.Load(), elapsed.Milliseconds(), rate, avgSize,
		float64(*n)/renderTime.Seconds(), dials)
	if failed.Load() > 0 {
		return fmt.Errorf("bench smtp: %d of %d emails failed: %w", failed.Load(), *n, firstErr)
	}
	return nil
}

// newBenchDigests builds n digests of generated jobs for distinct
// recipients and filters, as the digester hands them to the renderer.
func newBenchDigests(n int, seed uint64) []notifier.DigestEmail {
	g, err := workload.NewGenerator("popular", seed)
	if err != nil {
		panic(err) // "popular" is a known profile
	}
	out := make([]notifier.DigestEmail, n)
	for i := range out {
		jobs := make([]matcher.Job, smtpJobsPerDigest)
		for k := range jobs {
			jobs[k] = g.Job(i*smtpJobsPerDigest + k)
		}
		sub := "sub_bench" + strconv.Itoa(i)
		out[i] = notifier.DigestEmail{
			ID:             sub + "." + strconv.FormatInt(int64(i), 36),
			SubscriptionID: sub,
			To:             fmt.Sprintf("user%d@example.com", i),
			Frequency:      "daily",
			Filter:         g.Filter(i).Filter,
			Jobs:           jobs,
			UnsubscribeURL: "https://jobalert.example/v1/unsubscribe?token=" + sub + ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbg",
			ManageURL:      "https://jobalert.example/manage?token=" + sub + ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbg",
			MoreURL:        "https://jobalert.example/manage?token=" + sub + ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbg",
		}
	}
	return out
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}
