package telegram_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/chattest"
	"github.com/jobalert/jobalert/channel/telegram"
	"github.com/jobalert/jobalert/internal/testenv"
)

const botToken = "7000001:AAE-fake_token_for_tests_0123456789"

func TestRenderStaysWithinTelegramLimits(t *testing.T) {
	for _, c := range []struct{ jobs, maxJobs, wantListed int }{
		{1, 0, 1}, {25, 0, 25}, {200, 0, 25}, {200, 200, 200},
	} {
		m := chattest.Digest(c.jobs)
		texts, err := telegram.Render(m, c.maxJobs)
		if err != nil {
			t.Fatal(err)
		}
		listed := 0
		for i, s := range texts {
			visible, err := chattest.ParseTelegramHTML(s)
			if err != nil {
				t.Errorf("%d jobs, message %d: %v", c.jobs, i, err)
			}
			if n := telegram.Length(visible); n > chattest.TelegramMaxText {
				t.Errorf("%d jobs, message %d: %d characters, more than %d", c.jobs, i, n, chattest.TelegramMaxText)
			}
			listed += strings.Count(s, " — Payments &amp; &lt;Ledger&gt;")
		}
		if listed != c.wantListed {
			t.Errorf("%d jobs, max %d: listed %d, want %d", c.jobs, c.maxJobs, listed, c.wantListed)
		}
		// Split between jobs: each job's block is whole in one message.
		for i := range c.wantListed {
			prefix := fmt.Sprintf("Engineer %d — ", i)
			n := 0
			for _, s := range texts {
				n += strings.Count(s, prefix)
			}
			if n != 1 {
				t.Errorf("%d jobs: job %d appears %d times, want once", c.jobs, i, n)
			}
		}
		if last := texts[len(texts)-1]; !strings.Contains(last, `">Unsubscribe</a>`) {
			t.Errorf("%d jobs: the last message lacks the unsubscribe link", c.jobs)
		}
	}
	texts, _ := telegram.Render(chattest.Digest(3), 0)
	for _, want := range []string{
		`<b>3 new "backend engineer" jobs sponsoring H-1B</b>`,
		`<a href="https://careers.example.com/jobs/0?src=alert&amp;utm=&lt;x&gt;|y">Senior Backend Engineer 0 — Payments &amp; &lt;Ledger&gt;`,
		"ACME &amp; Sons &lt;Holdings&gt;", "<i>Sponsorship not stated</i>", "Visa: H-1B", "Posted Dec 5",
	} {
		if !strings.Contains(texts[0], want) {
			t.Errorf("message lacks %q:\n%s", want, texts[0])
		}
	}
}

func newBot(t *testing.T, fake *chattest.Telegram, sl *chattest.Sleeper) *telegram.Bot {
	t.Helper()
	b, err := telegram.New(telegram.Options{Token: botToken, APIURL: fake.URL, PollTimeout: time.Second, Sleep: sl.Sleep, MaxWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSend(t *testing.T) {
	fake := chattest.NewTelegram(t, botToken)
	sl := &chattest.Sleeper{}
	b := newBot(t, fake, sl)
	texts, _ := telegram.Render(chattest.Digest(200), 200)
	fake.RateLimit(1, 2)
	sent, err := b.Send(context.Background(), 42, texts)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sent != len(texts) || len(fake.Sent()) != len(texts) {
		t.Errorf("sent %d, fake accepted %d, want %d", sent, len(fake.Sent()), len(texts))
	}
	if got := sl.Waited(); len(got) != 1 || got[0] != 2*time.Second {
		t.Errorf("waited %v, want [2s] from parameters.retry_after", got)
	}
	for _, m := range fake.Sent() {
		if m.ParseMode != "HTML" || m.ChatID != 42 {
			t.Errorf("message to %d with parse_mode %q, want 42 and HTML", m.ChatID, m.ParseMode)
		}
	}

	fake.Block(43)
	_, err = b.Send(context.Background(), 43, texts[:1])
	if !errors.Is(err, channel.ErrGone) {
		t.Errorf("blocked bot: got %v, want ErrGone", err)
	}
	if err != nil && strings.Contains(err.Error(), botToken) {
		t.Errorf("the error shows the bot token: %v", err)
	}
	fake.RateLimit(1, 3600)
	_, err = b.Send(context.Background(), 42, texts[:1])
	var temp *channel.TemporaryError
	if !errors.As(err, &temp) || temp.After != time.Hour {
		t.Errorf("retry_after 3600 > MaxWait: got %v, want a TemporaryError after 1h", err)
	}
	// A message over the limit is Telegram's 400, a permanent failure.
	_, err = b.Send(context.Background(), 42, []string{strings.Repeat("x", 4097)})
	if !errors.Is(err, channel.ErrPermanent) || !strings.Contains(err.Error(), "message is too long") {
		t.Errorf("too long: got %v, want a permanent 'message is too long'", err)
	}
}

func TestTokenNeverPrints(t *testing.T) {
	tok := telegram.Token(botToken)
	b, _ := json.Marshal(struct{ T telegram.Token }{tok})
	for _, s := range []string{tok.String(), fmt.Sprint(tok), fmt.Sprintf("%v", tok), string(b), tok.LogValue().String()} {
		if strings.Contains(s, "fake_token") {
			t.Errorf("the token shows in %q", s)
		}
	}
	fake := chattest.NewTelegram(t, botToken)
	bot := newBot(t, fake, &chattest.Sleeper{})
	name, err := bot.Username(context.Background())
	if err != nil || name != "jobalert_test_bot" {
		t.Errorf("Username = %q, %v", name, err)
	}
	if got := telegram.StartLink(name, "abc"); got != "https://t.me/jobalert_test_bot?start=abc" {
		t.Errorf("StartLink = %q", got)
	}
}

// binder records binds and unbinds.
type binder struct {
	mu     sync.Mutex
	binds  map[string][]int64 // sub → chats
	unbind []int64
	calls  int
}

func (b *binder) Bind(_ context.Context, sub string, chat int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	b.binds[sub] = append(b.binds[sub], chat)
	return nil
}

func (b *binder) Unbind(_ context.Context, chat int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	b.unbind = append(b.unbind, chat)
	return nil
}

func (b *binder) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

// TestBindingWithTwoReplicas runs two pollers (replicas) against one fake
// Bot API and one real Redis: every update is handled once, by whichever
// holds the lease, the two never poll at the same time (no 409), and a
// replica that stops hands over without replaying anything.
func TestBindingWithTwoReplicas(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	fake := chattest.NewTelegram(t, botToken)
	keys := telegram.Keys{Prefix: prefix}
	starts := telegram.NewStarts(rdb, keys, time.Hour)
	bd := &binder{binds: map[string][]int64{}}
	ctx := context.Background()

	const n = 30
	tokens := make([]string, n)
	for i := range tokens {
		tok, err := starts.Issue(ctx, fmt.Sprintf("sub-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tok
	}

	run := func(name string) (stop func()) {
		b := newBot(t, fake, &chattest.Sleeper{})
		p, err := telegram.NewPoller(b, rdb, keys, starts, bd, telegram.PollerOptions{
			Owner: name, LeaseTTL: 3 * time.Second, Idle: 20 * time.Millisecond, Logger: testenv.Logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Run(pctx) }()
		return func() { cancel(); <-done }
	}
	stopA := run("replica-a")
	stopB := run("replica-b")

	for i, tok := range tokens {
		fake.AddUpdate(int64(1000+i), "/start "+tok)
	}
	fake.AddUpdate(2000, "/start "+tokens[0]) // a used token
	fake.AddUpdate(2001, "/start not-a-token")
	fake.AddUpdate(2002, "hello") // not a command: no answer
	fake.AddUpdate(1000, "/stop")
	testenv.Eventually(t, 10*time.Second, func() bool { return bd.count() == n+1 && len(fake.Sent()) == n+3 },
		"binds and replies: got %d calls and %d replies", bd.count(), len(fake.Sent()))

	for i := range n {
		if got := bd.binds[fmt.Sprintf("sub-%d", i)]; len(got) != 1 || got[0] != int64(1000+i) {
			t.Errorf("sub-%d bound to %v, want [%d] once", i, got, 1000+i)
		}
	}
	if len(bd.unbind) != 1 || bd.unbind[0] != 1000 {
		t.Errorf("unbinds %v, want [1000]", bd.unbind)
	}
	replies := map[int64][]string{}
	for _, m := range fake.Sent() {
		replies[m.ChatID] = append(replies[m.ChatID], m.Text)
	}
	if r := replies[1005]; len(r) != 1 || !strings.Contains(r[0], "Done") {
		t.Errorf("chat 1005 got %q, want one confirmation", r)
	}
	if r := replies[2000]; len(r) != 1 || !strings.Contains(r[0], "expired or was already used") {
		t.Errorf("a used token got %q", r)
	}
	if r := replies[2001]; len(r) != 1 || !strings.Contains(r[0], "expired or was already used") {
		t.Errorf("an unknown token got %q", r)
	}
	if r := replies[1000]; len(r) != 2 || !strings.Contains(r[1], "Stopped") {
		t.Errorf("chat 1000 got %q, want the confirmation then Stopped", r)
	}
	if _, conflicts, _ := fake.Polls(); conflicts != 0 {
		t.Errorf("%d getUpdates conflicts (409): two replicas polled at once", conflicts)
	}

	// Stop both; a new replica starts after the last claimed update.
	stopA()
	stopB()
	_, _, before := fake.Polls()
	calls, sent := bd.count(), len(fake.Sent())
	tok, _ := starts.Issue(ctx, "sub-late")
	fake.AddUpdate(3000, "/start "+tok)
	stopC := run("replica-c")
	defer stopC()
	testenv.Eventually(t, 10*time.Second, func() bool { return bd.count() == calls+1 && len(fake.Sent()) == sent+1 },
		"the new replica handles the new update: %d calls, %d replies", bd.count(), len(fake.Sent()))
	_, _, after := fake.Polls()
	first := after[len(before)]
	if last := before[len(before)-1]; first < last {
		t.Errorf("the new replica polled from offset %d, before the last one used (%d): it would replay", first, last)
	}
	if got := bd.binds["sub-late"]; len(got) != 1 || got[0] != 3000 {
		t.Errorf("sub-late bound to %v, want [3000]", got)
	}
}

// TestLeaseTakeover: a replica that holds the lease and dies without
// giving it up (a crash) blocks the others only until the lease expires.
func TestLeaseTakeover(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	fake := chattest.NewTelegram(t, botToken)
	keys := telegram.Keys{Prefix: prefix}
	starts := telegram.NewStarts(rdb, keys, time.Hour)
	bd := &binder{binds: map[string][]int64{}}
	ctx := context.Background()
	opts := func(owner string) telegram.PollerOptions {
		return telegram.PollerOptions{Owner: owner, LeaseTTL: 1500 * time.Millisecond, Idle: 20 * time.Millisecond, Logger: testenv.Logger(t)}
	}
	crashed, err := telegram.NewPoller(newBot(t, fake, &chattest.Sleeper{}), rdb, keys, starts, bd, opts("crashed"))
	if err != nil {
		t.Fatal(err)
	}
	if err := crashed.Step(ctx); err != nil { // takes the lease, then never runs again
		t.Fatal(err)
	}
	if _, err := telegram.NewPoller(newBot(t, fake, &chattest.Sleeper{}), rdb, keys, starts, bd,
		telegram.PollerOptions{LeaseTTL: time.Second}); err == nil {
		t.Error("a lease TTL not longer than the poll timeout was accepted")
	}
	survivor, _ := telegram.NewPoller(newBot(t, fake, &chattest.Sleeper{}), rdb, keys, starts, bd, opts("survivor"))
	tok, _ := starts.Issue(ctx, "sub-1")
	fake.AddUpdate(500, "/start "+tok)
	start := time.Now()
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = survivor.Run(pctx) }()
	defer func() { cancel(); <-done }()
	testenv.Eventually(t, 10*time.Second, func() bool { return bd.count() == 1 }, "the survivor never took over")
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("takeover took %s, want about the 1.5 s lease", took)
	}
	if got := bd.binds["sub-1"]; len(got) != 1 || got[0] != 500 {
		t.Errorf("sub-1 bound to %v, want [500]", got)
	}
}

func TestErrorsHideTheToken(t *testing.T) {
	b, err := telegram.New(telegram.Options{Token: botToken, APIURL: "http://127.0.0.1:1", PollTimeout: time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Send(context.Background(), 42, []string{"hi"})
	var temp *channel.TemporaryError
	if err == nil || !errors.As(err, &temp) {
		t.Fatalf("send to a closed port: got %v, want a temporary error", err)
	}
	if strings.Contains(err.Error(), "fake_token") {
		t.Errorf("the error shows the bot token: %v", err)
	}
}

// TestKeysShareOneSlot: the keys a script touches together share one
// hash tag (Redis Cluster), and a start token's key does not hold it.
func TestKeysShareOneSlot(t *testing.T) {
	k := telegram.Keys{Prefix: "jobalert:"}
	if a, b := testenv.HashTag(k.Lease()), testenv.HashTag(k.Offset()); a == "" || a != b {
		t.Errorf("lease %q and offset %q in different slots", k.Lease(), k.Offset())
	}
	if s := k.Start("secret-start-token"); testenv.HashTag(s) == "" || strings.Contains(s, "secret") {
		t.Errorf("start key %q", s)
	}
}
