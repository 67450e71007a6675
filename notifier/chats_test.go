package notifier_test

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
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
)

// The chat tests drive the digest engine with Chat fakes that record what
// they accept and answer as the channel senders do (channel/slack and the
// others are tested against chattest's fake services in their packages).

// post is one message of an alert a fakeChat accepted.
type post struct {
	sub  string
	msg  channel.Message
	part int // which message of a multi-message alert
}

// answer scripts one Send: accept parts more messages, then fail with err.
type answer struct {
	accept int
	err    error
}

// fakeChat is a chat channel whose alerts take parts messages each (1
// when 0). It accepts everything unless scripted.
type fakeChat struct {
	mu     sync.Mutex
	parts  int
	script []answer
	posts  []post
	calls  int
}

func (f *fakeChat) Send(_ context.Context, sub *store.Subscription, msg channel.Message, from int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	parts := max(1, f.parts)
	upto, err := parts, error(nil)
	if len(f.script) > 0 {
		a := f.script[0]
		f.script = f.script[1:]
		upto, err = min(parts, from+a.accept), a.err
	}
	for i := from; i < upto; i++ {
		f.posts = append(f.posts, post{sub: sub.ID, msg: msg, part: i})
	}
	return upto, err
}

// fail queues n answers that accept accept messages then fail with err.
func (f *fakeChat) fail(n, accept int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, answer{accept: accept, err: err})
	}
}

func (f *fakeChat) got() []post {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]post(nil), f.posts...)
}

// wantPosts checks that f accepted exactly the given parts, in order.
func wantPosts(t *testing.T, name string, f *fakeChat, parts ...int) []post {
	t.Helper()
	got := f.got()
	var gotParts []int
	for _, p := range got {
		gotParts = append(gotParts, p.part)
	}
	if fmt.Sprint(gotParts) != fmt.Sprint(parts) {
		t.Fatalf("%s: got messages %v, want %v", name, gotParts, parts)
	}
	return got
}

// fakeFeed records appended jobs.
type fakeFeed struct {
	mu   sync.Mutex
	jobs map[string][]string // subscription -> job ids, in append order
	fail int
}

func (f *fakeFeed) Append(_ context.Context, subID string, jobs []channel.Job, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return errors.New("feed: connection refused")
	}
	if f.jobs == nil {
		f.jobs = map[string][]string{}
	}
	for _, j := range jobs {
		f.jobs[subID] = append(f.jobs[subID], j.ID)
	}
	return nil
}

func (f *fakeFeed) of(subID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.jobs[subID]...)
}

// chats makes the three chat fakes and the config carrying them.
type chats struct{ slack, discord, telegram *fakeChat }

func newChats() chats { return chats{&fakeChat{}, &fakeChat{}, &fakeChat{}} }

func (c chats) config(cfg notifier.DigestConfig) notifier.DigestConfig {
	cfg.Chats = map[string]notifier.Chat{store.ChannelSlack: c.slack, store.ChannelDiscord: c.discord, store.ChannelTelegram: c.telegram}
	return cfg
}

// withChannels sets a subscription's channels and their destinations.
func (e *digestEnv) withChannels(sub *store.Subscription, now time.Time, chs ...string) {
	e.t.Helper()
	e.update(sub.ID, now, func(s *store.Subscription) {
		s.Channels = chs
		s.SlackURL = "https://hooks.slack.com/services/T1/B1/secret"
		s.DiscordURL = "https://discord.com/api/webhooks/1/secret"
		s.TelegramChat = 4242
	})
}

// advance moves the digesters' clock past any retry time and sends the
// outbox.
func (e *digestEnv) outbox(d *notifier.Digester, by time.Duration) notifier.RunResult {
	e.t.Helper()
	e.clock.Advance(by)
	return d.SendOutbox(context.Background())
}

func outboxLen(t *testing.T, e *digestEnv) int64 {
	t.Helper()
	n, err := e.st.OutboxLen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var daily8 = schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}

func at8(d int) time.Time { return time.Date(2026, 12, d, 8, 0, 0, 0, losAngeles) }

func TestEveryChannelGetsTheDigestOnce(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	feed := &fakeFeed{}
	cfg := c.config(notifier.DigestConfig{Feed: feed})
	d := e.digester(cfg)
	all := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(all, at8(1).Add(-2*time.Hour), "email", "slack", "discord", "telegram", "feed")
	chatOnly := e.subscribe("bob@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(chatOnly, at8(1).Add(-2*time.Hour), "slack")
	e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), all, chatOnly)
	e.match(at8(1).Add(-30*time.Minute), newJob("j2", "Backend Engineer II"), all, chatOnly)

	run(t, d, at8(1), notifier.RunResult{Sent: 2})
	wantListed(t, wantMails(t, e, "ada@example.com", 1)[0], []string{"j1", "j2"})
	wantMails(t, e, "bob@example.com", 0) // email is not one of its channels
	for name, f := range map[string]*fakeChat{"discord": c.discord, "telegram": c.telegram} {
		p := wantPosts(t, name, f, 0)[0]
		if p.sub != all.ID {
			t.Errorf("%s: posted for %s, want %s", name, p.sub, all.ID)
		}
	}
	posts := wantPosts(t, "slack", c.slack, 0, 0)
	m := posts[0].msg
	if got, want := m.Heading(), `2 new "backend engineer" jobs`; got != want {
		t.Errorf("heading: got %q, want %q", got, want)
	}
	if m.Kind != channel.Alert || m.Frequency != "daily" || len(m.Jobs) != 2 || m.Jobs[0].ID != "j2" {
		t.Errorf("message: got kind %v, frequency %q, jobs %+v; want an alert of j2, j1", m.Kind, m.Frequency, m.Jobs)
	}
	if got, want := m.Jobs[0].Salary, "$115,000–$160,000 a year"; got != want {
		t.Errorf("salary: got %q, want %q (the email's formatting)", got, want)
	}
	// A chat may be shared: its links are the channel's own, never the
	// owner's manage or unsubscribe link.
	want := [3]string{"https://jobalert.test/v1/channel?token=slack-" + posts[0].sub,
		"https://jobalert.test/v1/channel/stop?token=slack-" + posts[0].sub, "https://jobalert.test/v1/channel?token=slack-" + posts[0].sub}
	if got := [3]string{m.ManageURL, m.UnsubscribeURL, m.MoreURL}; got != want {
		t.Errorf("links (manage, unsubscribe, more): got %q, want %q", got, want)
	}
	if d := wantPosts(t, "discord", c.discord, 0)[0].msg; d.UnsubscribeURL != "https://jobalert.test/v1/channel/stop?token=discord-"+all.ID {
		t.Errorf("discord's stop link: got %q, want its own channel's", d.UnsubscribeURL)
	}
	if got := feed.of(all.ID); fmt.Sprint(got) != "[j2 j1]" {
		t.Errorf("feed: got %v, want [j2 j1]", got)
	}
	if got := feed.of(chatOnly.ID); len(got) != 0 {
		t.Errorf("feed of a subscription without it: got %v, want nothing", got)
	}
	// Nothing is left to send again, whatever the clock.
	if r := e.outbox(d, time.Hour); r != (notifier.RunResult{}) {
		t.Errorf("SendOutbox after: got %+v, want nothing", r)
	}
	wantPosts(t, "slack", c.slack, 0, 0)
	wantPosts(t, "discord", c.discord, 0)
	wantMails(t, e, "ada@example.com", 1)
	if n := outboxLen(t, e); n != 0 {
		t.Errorf("outbox: got %d, want 0", n)
	}
}

func TestTelegramNotBoundIsSkipped(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	d := e.digester(c.config(notifier.DigestConfig{}))
	sub := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.update(sub.ID, at8(1).Add(-2*time.Hour), func(s *store.Subscription) { s.Channels = []string{"email", "telegram"} })
	e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), sub)
	run(t, d, at8(1), notifier.RunResult{Sent: 1})
	wantMails(t, e, "ada@example.com", 1)
	if n := c.telegram.calls; n != 0 {
		t.Errorf("telegram sends without a bound chat: got %d, want 0", n)
	}
	if n := outboxLen(t, e); n != 0 {
		t.Errorf("outbox: got %d, want 0 (the unbound channel is done)", n)
	}
}

// A chat failing for a while does not hold the others back, and its
// retry posts only to it; a multi-message alert resumes after the
// messages accepted.
func TestTemporaryChatFailureRetriesOnlyThatChat(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	c.slack.fail(1, 0, &channel.TemporaryError{After: 10 * time.Minute, Err: errors.New("rate limited (HTTP 429)")})
	c.telegram.parts = 3
	c.telegram.fail(1, 2, &channel.TemporaryError{Err: errors.New("HTTP 502")})
	d := e.digester(c.config(notifier.DigestConfig{}))
	sub := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(sub, at8(1).Add(-2*time.Hour), "email", "slack", "discord", "telegram")
	e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), sub)

	run(t, d, at8(1), notifier.RunResult{Deferred: 1})
	wantMails(t, e, "ada@example.com", 1)
	wantPosts(t, "discord", c.discord, 0)
	wantPosts(t, "slack", c.slack)
	wantPosts(t, "telegram", c.telegram, 0, 1)

	// Slack asked for 10 minutes: the backoff (tens of milliseconds here)
	// does not bring the digest back earlier.
	if r := e.outbox(d, 9*time.Minute); r != (notifier.RunResult{}) {
		t.Fatalf("SendOutbox before Retry-After: got %+v, want nothing", r)
	}
	if r := e.outbox(d, time.Minute); r != (notifier.RunResult{Sent: 1}) {
		t.Fatalf("SendOutbox after Retry-After: got %+v, want the digest sent", r)
	}
	wantMails(t, e, "ada@example.com", 1)
	wantPosts(t, "discord", c.discord, 0)
	wantPosts(t, "slack", c.slack, 0)
	wantPosts(t, "telegram", c.telegram, 0, 1, 2)
	if r := e.outbox(d, time.Hour); r != (notifier.RunResult{}) {
		t.Errorf("SendOutbox after: got %+v, want nothing", r)
	}
}

// The retry of a digest whose slack post failed, taken by another
// replica (or the same process restarted): it sends only what is not
// marked.
func TestAnotherReplicaRetriesOnlyTheUnmarkedChat(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	c.slack.fail(1, 0, errors.New("dial tcp: connection refused"))
	before := e.digester(c.config(notifier.DigestConfig{}))
	sub := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(sub, at8(1).Add(-2*time.Hour), "email", "slack", "discord")
	e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), sub)
	run(t, before, at8(1), notifier.RunResult{Deferred: 1})

	after := e.digester(c.config(notifier.DigestConfig{}))
	if r := e.outbox(after, 3*time.Minute); r != (notifier.RunResult{Sent: 1}) {
		t.Fatalf("SendOutbox on the other replica: got %+v, want the digest sent", r)
	}
	wantMails(t, e, "ada@example.com", 1)
	wantPosts(t, "discord", c.discord, 0)
	wantPosts(t, "slack", c.slack, 0)
}

func TestDeletedSlackWebhookTurnsTheChannelOffAndTellsTheOwnerOnce(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	// As the Slack sender answers a 404 no_service; the URL in the error
	// stands for a careless sender: it must not reach the reason or the
	// email.
	const hookURL = "https://hooks.slack.com/services/T1/B1/secret"
	c.slack.fail(1, 0, fmt.Errorf("slack: %w: HTTP 404 no_service (POST %s)", channel.ErrGone, hookURL))
	d := e.digester(c.config(notifier.DigestConfig{}))
	sub := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(sub, at8(1).Add(-2*time.Hour), "email", "slack", "discord")
	e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), sub)

	run(t, d, at8(1), notifier.RunResult{Sent: 1})
	if n := c.slack.calls; n != 1 {
		t.Fatalf("slack sends: got %d, want 1", n)
	}
	wantPosts(t, "discord", c.discord, 0)
	got, err := e.st.GetSubscription(context.Background(), sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Has(store.ChannelSlack) || !got.Has(store.ChannelDiscord) || !got.Has(store.ChannelEmail) {
		t.Errorf("channels after the 404: got %v disabled %v, want slack off and the others on", got.Channels, got.Disabled)
	}
	if r := got.Disabled[store.ChannelSlack]; !strings.Contains(r, "404 no_service") || strings.Contains(r, "/services/") {
		t.Errorf("disabled reason: got %q, want the answer without the URL", r)
	}
	ms := wantMails(t, e, "ada@example.com", 2)
	var notice = ms[0]
	if !strings.Contains(notice.Subject, "Slack") {
		notice = ms[1]
	}
	if want := "Your Slack alerts were turned off"; notice.Subject != want {
		t.Fatalf("notice subject: got %q, want %q", notice.Subject, want)
	}
	for _, part := range []string{notice.Text, notice.HTML} {
		if strings.Contains(part, "/services/") || strings.Contains(part, "secret") {
			t.Errorf("the notice shows the webhook URL:\n%s", part)
		}
	}
	if !strings.Contains(text(notice), "https://jobalert.test/manage?token="+sub.ID) {
		t.Errorf("the notice lacks the manage link:\n%s", notice.Text)
	}

	// The next digest goes to the other channels only; no second notice.
	e.match(at8(1).Add(time.Hour), newJob("j2", "Backend Engineer II"), sub)
	run(t, d, at8(2), notifier.RunResult{Sent: 1})
	if n := c.slack.calls; n != 1 {
		t.Errorf("slack sends after it was turned off: got %d, want 1", n)
	}
	wantPosts(t, "discord", c.discord, 0, 0)
	wantMails(t, e, "ada@example.com", 3) // the second digest
}

func TestPermanentFailureIsDeadLetteredAndReplayedToThatChannelOnly(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	c.slack.parts = 2
	c.slack.fail(1, 1, fmt.Errorf("%w: HTTP 400 invalid_blocks", channel.ErrPermanent))
	d := e.digester(c.config(notifier.DigestConfig{}))
	sub := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(sub, at8(1).Add(-2*time.Hour), "email", "slack", "discord")
	e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), sub)

	run(t, d, at8(1), notifier.RunResult{Sent: 1})
	wantPosts(t, "slack", c.slack, 0)
	dls, err := e.st.ChatDeadLetters(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 {
		t.Fatalf("dead letters: got %d, want 1", len(dls))
	}
	dl := dls[0]
	if dl.Channel != "slack" || dl.SubscriptionID != sub.ID || dl.Sent != 1 || dl.Attempts != 1 || !strings.Contains(dl.Reason, "invalid_blocks") {
		t.Errorf("dead letter: got %+v, want slack, 1 of its messages accepted, 1 attempt, the reason", dl)
	}
	var m channel.Message
	if err := json.Unmarshal([]byte(dl.Message), &m); err != nil || len(m.Jobs) != 1 || m.Jobs[0].ID != "j1" {
		t.Fatalf("dead letter message: got %+v (%v), want the alert of j1", m, err)
	}
	if n := outboxLen(t, e); n != 0 {
		t.Fatalf("outbox: got %d, want 0", n)
	}

	if _, err := e.st.ReplayChatDeadLetter(context.Background(), dl.ID, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if r := e.outbox(d, time.Second); r != (notifier.RunResult{Sent: 1}) {
		t.Fatalf("SendOutbox of the replay: got %+v, want it sent", r)
	}
	// The replay resumes after the message accepted before.
	posts := wantPosts(t, "slack", c.slack, 0, 1)
	if posts[1].msg.Jobs[0].ID != "j1" {
		t.Errorf("replayed message: got %+v, want the alert of j1", posts[1].msg)
	}
	wantPosts(t, "discord", c.discord, 0)
	wantMails(t, e, "ada@example.com", 1)
	if dls, _ := e.st.ChatDeadLetters(context.Background(), 10); len(dls) != 0 {
		t.Errorf("dead letters after the replay: got %d, want 0", len(dls))
	}
	if n := outboxLen(t, e); n != 0 {
		t.Errorf("outbox after the replay: got %d, want 0", n)
	}
}

func TestChatFailingEveryTryIsDeadLettered(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	c.discord.fail(3, 0, &channel.TemporaryError{Err: errors.New("HTTP 503")})
	d := e.digester(c.config(notifier.DigestConfig{ChatAttempts: 3}))
	sub := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(sub, at8(1).Add(-2*time.Hour), "email", "discord")
	e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), sub)

	run(t, d, at8(1), notifier.RunResult{Deferred: 1})
	if r := e.outbox(d, time.Hour); r != (notifier.RunResult{Deferred: 1}) {
		t.Fatalf("second try: got %+v, want deferred", r)
	}
	if r := e.outbox(d, time.Hour); r != (notifier.RunResult{Sent: 1}) {
		t.Fatalf("third try: got %+v, want the digest done (dead-lettered)", r)
	}
	wantPosts(t, "discord", c.discord)
	wantMails(t, e, "ada@example.com", 1)
	dls, err := e.st.ChatDeadLetters(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || dls[0].Channel != "discord" || dls[0].Attempts != 3 || !strings.Contains(dls[0].Reason, "503") {
		t.Fatalf("dead letters: got %+v, want discord after 3 attempts", dls)
	}
	if n := outboxLen(t, e); n != 0 {
		t.Errorf("outbox: got %d, want 0", n)
	}
}

func TestFeedFailureRetriesTheDigestAndAppendsOnce(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	feed := &fakeFeed{fail: 1}
	d := e.digester(c.config(notifier.DigestConfig{Feed: feed}))
	sub := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(sub, at8(1).Add(-2*time.Hour), "slack", "feed")
	e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), sub)
	run(t, d, at8(1), notifier.RunResult{Deferred: 1})
	if r := e.outbox(d, time.Hour); r != (notifier.RunResult{Sent: 1}) {
		t.Fatalf("retry: got %+v, want sent", r)
	}
	if got := feed.of(sub.ID); fmt.Sprint(got) != "[j1]" {
		t.Errorf("feed: got %v, want [j1]", got)
	}
	wantPosts(t, "slack", c.slack, 0)
}

// A multi-message alert partly accepted resumes the message its accepted
// parts were cut from, not one rebuilt from newer job data: a job closed
// meanwhile would shift the split and skip or repeat a job.
func TestPartialChatSendResumesTheSameMessage(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	c.telegram.parts = 3
	c.telegram.fail(1, 1, &channel.TemporaryError{Err: errors.New("HTTP 502")})
	d := e.digester(c.config(notifier.DigestConfig{}))
	sub := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(sub, at8(1).Add(-2*time.Hour), "telegram")
	e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), sub)
	e.match(at8(1).Add(-time.Hour), newJob("j2", "Platform Engineer"), sub)
	run(t, d, at8(1), notifier.RunResult{Deferred: 1})

	// j2 closes before the retry.
	e.event(at8(1).Add(time.Minute), jobevent.Closed, newJob("j2", "Platform Engineer"), sub.ID)
	if r := e.outbox(d, time.Hour); r != (notifier.RunResult{Sent: 1}) {
		t.Fatalf("SendOutbox: got %+v, want the digest sent", r)
	}
	got := wantPosts(t, "telegram", c.telegram, 0, 1, 2)
	ids := func(p post) string {
		var s []string
		for _, j := range p.msg.Jobs {
			s = append(s, j.ID)
		}
		return strings.Join(s, ",")
	}
	if first, resumed := ids(got[0]), ids(got[1]); first != resumed {
		t.Errorf("resumed message lists %s, want the jobs of the message its first part came from: %s", resumed, first)
	}
}

// A chat service that is down (5xx, timeouts) is not tried for every
// digest: after 5 failures in a row its host is held, and the digests
// with that channel are put off without a request and without counting a
// try, so the outage delays chat alerts instead of holding the digest
// workers or dead-lettering them; the other channels go out meanwhile.
// The send after a hold is a probe: a failure holds the host twice as
// long, a success lets the rest through.
func TestFailingChatServiceIsHeldNotHammered(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	c.slack.fail(6, 0, &channel.TemporaryError{Err: errors.New("HTTP 503")})
	d := e.digester(c.config(notifier.DigestConfig{Workers: 1, ChatAttempts: 3}))
	var subs []*store.Subscription
	for i := range 8 {
		sub := e.subscribe(fmt.Sprintf("u%d@example.com", i), daily8, at8(1).Add(-2*time.Hour))
		e.withChannels(sub, at8(1).Add(-2*time.Hour), "email", "slack", "discord")
		e.match(at8(1).Add(-time.Hour), newJob("j1", "Backend Engineer"), sub)
		subs = append(subs, sub)
	}
	calls := func() int {
		c.slack.mu.Lock()
		defer c.slack.mu.Unlock()
		return c.slack.calls
	}

	run(t, d, at8(1), notifier.RunResult{Deferred: 8})
	for _, s := range subs {
		wantMails(t, e, s.Email, 1)
	}
	if got := len(c.discord.got()); got != 8 {
		t.Fatalf("discord posts: got %d, want 8 (another host, not held)", got)
	}
	if got := calls(); got != 5 {
		t.Fatalf("slack requests: got %d, want 5, then the host held", got)
	}
	// Within the 15 s hold the retries make no request.
	e.outbox(d, 10*time.Second)
	if got := calls(); got != 5 {
		t.Fatalf("slack requests during the hold: got %d, want still 5", got)
	}
	// After it, one probe; it fails and holds the host for 30 s.
	e.outbox(d, 10*time.Second)
	if got := calls(); got != 6 {
		t.Fatalf("slack requests after the hold: got %d, want 6 (one probe)", got)
	}
	e.outbox(d, 20*time.Second)
	if got := calls(); got != 6 {
		t.Fatalf("slack requests during the longer hold: got %d, want still 6", got)
	}
	// Slack is back: the probe succeeds and every alert goes out once,
	// none dead-lettered, though each digest was put off more than
	// ChatAttempts times.
	e.outbox(d, 15*time.Second)
	e.outbox(d, time.Hour)
	posted := map[string]int{}
	for _, p := range c.slack.got() {
		posted[p.sub]++
	}
	for _, s := range subs {
		if posted[s.ID] != 1 {
			t.Errorf("slack posts for %s: got %d, want 1", s.Email, posted[s.ID])
		}
		wantMails(t, e, s.Email, 1)
	}
	dls, err := e.st.ChatDeadLetters(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 0 {
		t.Errorf("dead letters: got %+v, want none", dls)
	}
	if n := outboxLen(t, e); n != 0 {
		t.Errorf("outbox: got %d, want 0", n)
	}
}

// A chat message dead-lettered before chat links existed carries the
// owner's manage and unsubscribe links; replayed, it carries the chat's,
// as a message sent now does.
func TestReplayedOldMessageGetsTheChatsLinks(t *testing.T) {
	e := newDigestEnv(t)
	c := newChats()
	d := e.digester(c.config(notifier.DigestConfig{}))
	sub := e.subscribe("ada@example.com", daily8, at8(1).Add(-2*time.Hour))
	e.withChannels(sub, at8(1).Add(-2*time.Hour), "email", "discord")
	old := channel.Message{Kind: channel.Alert, Frequency: "daily", Jobs: []channel.Job{{ID: "j1", Title: "Backend Engineer", URL: "https://jobs.example.com/j1"}},
		ManageURL: "https://jobalert.test/manage?token=" + sub.ID, UnsubscribeURL: "https://jobalert.test/v1/unsubscribe?token=" + sub.ID,
		MoreURL: "https://jobalert.test/manage?token=" + sub.ID}
	raw, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dl := store.ChatDeadLetter{DigestID: "dg-old", SubscriptionID: sub.ID, Channel: "discord", Reason: "HTTP 400", Attempts: 1,
		DiedAt: e.clock.Now(), Message: string(raw)}
	if err := e.st.AddChatDeadLetter(ctx, dl, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.ReplayChatDeadLetter(ctx, store.ChatDeadLetterID("dg-old", "discord"), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if r := e.outbox(d, time.Second); r != (notifier.RunResult{Sent: 1}) {
		t.Fatalf("SendOutbox of the replay: got %+v, want it sent", r)
	}
	m := wantPosts(t, "discord", c.discord, 0)[0].msg
	want := [3]string{"https://jobalert.test/v1/channel?token=discord-" + sub.ID,
		"https://jobalert.test/v1/channel/stop?token=discord-" + sub.ID, "https://jobalert.test/v1/channel?token=discord-" + sub.ID}
	if got := [3]string{m.ManageURL, m.UnsubscribeURL, m.MoreURL}; got != want || m.Jobs[0].ID != "j1" {
		t.Errorf("replayed links: got %q (job %s), want %q (job j1)", got, m.Jobs[0].ID, want)
	}
}
