//go:build faults

package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel/chattest"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/store"
)

// chatChannels are the channels scenario 11 checks besides email.
var chatChannels = []string{store.ChannelSlack, store.ChannelDiscord, store.ChannelTelegram}

// chatFakes are one fake Slack and one fake Discord webhook per
// subscription (a fake has one webhook path, so its messages are the
// subscription's), and one fake Bot API with a chat per subscription.
type chatFakes struct {
	slack    map[string]*chattest.Slack
	discord  map[string]*chattest.Discord
	telegram *chattest.Telegram
	chatOf   map[int64]string // Telegram chat id -> subscription
}

const faultsBotToken = "424242:faults-bot-token"

// withChats gives every subscription of the rig's workload the email,
// Slack, Discord and Telegram channels, each on its own fake, and points
// the services at them (JOBALERT_WEBHOOK_ALLOW_PRIVATE for the loopback
// webhooks, JOBALERT_TELEGRAM_API_URL for the bot).
func (r *rig) withChats() *chatFakes {
	r.t.Helper()
	f := &chatFakes{slack: map[string]*chattest.Slack{}, discord: map[string]*chattest.Discord{},
		telegram: chattest.NewTelegram(r.t, faultsBotToken), chatOf: map[int64]string{}}
	ctx := context.Background()
	for i, id := range r.subs {
		s, d := chattest.NewSlack(r.t), chattest.NewDiscord(r.t, nil)
		// No rate limit here: the scenario is about the crash, and a
		// Discord bucket of 5 messages in 2 s per webhook would stretch
		// it past a minute.
		d.Limit = 1 << 30
		f.slack[id], f.discord[id] = s, d
		if _, err := r.st.UpdateSubscription(ctx, id, time.Now(), func(sub *store.Subscription) error {
			// Telegram chosen first, then bound (as its /start would).
			sub.Channels = []string{store.ChannelEmail, store.ChannelSlack, store.ChannelDiscord, store.ChannelTelegram}
			sub.SlackURL, sub.DiscordURL = s.URL, d.URL
			return nil
		}); err != nil {
			r.t.Fatalf("channels of %s: %v", id, err)
		}
		chat := int64(1000 + i)
		if err := r.st.BindTelegram(ctx, id, chat, time.Now()); err != nil {
			r.t.Fatalf("bind telegram of %s: %v", id, err)
		}
		f.chatOf[chat] = id
	}
	r.env["JOBALERT_WEBHOOK_ALLOW_PRIVATE"] = "true"
	r.env["JOBALERT_TELEGRAM_BOT_TOKEN"] = faultsBotToken
	r.env["JOBALERT_TELEGRAM_API_URL"] = f.telegram.URL
	return f
}

// chatJobRE finds the workload's job URLs in a rendered message.
var chatJobRE = regexp.MustCompile(`https://jobs\.example\.com/job/(s\d+-j\d+)`)

// chatTally is what one channel carried: how many messages listed each
// (subscription, job) pair.
type chatTally struct {
	messages int
	pairs    map[pair]int
}

// listed adds one message's jobs (each job once per message) to t.
func (t *chatTally) listed(sub, text string) {
	t.messages++
	seen := map[string]bool{}
	for _, m := range chatJobRE.FindAllStringSubmatch(text, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			t.pairs[pair{sub, m[1]}]++
		}
	}
}

// tally reads every fake.
func (f *chatFakes) tally() map[string]*chatTally {
	out := map[string]*chatTally{}
	for _, ch := range chatChannels {
		out[ch] = &chatTally{pairs: map[pair]int{}}
	}
	for sub, s := range f.slack {
		for _, p := range s.Received() {
			b, _ := json.Marshal(p)
			out[store.ChannelSlack].listed(sub, string(b))
		}
	}
	for sub, d := range f.discord {
		for _, p := range d.Received() {
			b, _ := json.Marshal(p)
			out[store.ChannelDiscord].listed(sub, string(b))
		}
	}
	for _, m := range f.telegram.Sent() {
		if sub, ok := f.chatOf[m.ChatID]; ok {
			out[store.ChannelTelegram].listed(sub, m.Text)
		}
	}
	return out
}

// chatResult is one channel's outcome against the expected pairs.
type chatResult struct {
	lost, dups, dupSubs, messages int
}

func (t *chatTally) against(want map[pair]bool) chatResult {
	res := chatResult{messages: t.messages}
	for p := range want {
		if t.pairs[p] == 0 {
			res.lost++
		}
	}
	subs := map[string]bool{}
	for p, n := range t.pairs {
		if n > 1 {
			res.dups += n - 1
			subs[p.sub] = true
		}
	}
	res.dupSubs = len(subs)
	return res
}

// Scenario 11: kill -9 of `jobalert serve` while multi-channel digests are
// being sent (email, Slack, Discord, Telegram for every subscription), and
// a restart under the same instance name. Every channel gets every expected
// (subscription, job) pair at least once. Duplicates are only the messages
// in flight at the kill: a chat message accepted by the service whose
// acceptance the digest had not recorded yet goes out again when the
// restart takes the digest over. A digest worker sends one digest at a
// time, so per channel at most JOBALERT_SMTP_POOL (4, the digest workers)
// subscriptions may see a duplicate, each at most the jobs of the one
// digest in flight; email keeps scenario 1's window (one digest per SMTP
// connection).
func TestScenario11KillServeMidMultiChannelDigest(t *testing.T) {
	t.Parallel()
	r := newRig(t, 11)
	jobs := r.workload(60, 600)
	fakes := r.withChats()
	const workers = 4 // JOBALERT_SMTP_POOL: the digest workers

	svc := r.startService("serve-11", nil)
	// Published while serve runs, at a pace that keeps digests going out
	// on every channel when the kill comes.
	p := r.publishInBackground(jobEvents(jobs), 150)
	var before map[string]*chatTally
	testenv.Eventually(t, time.Minute, func() bool {
		before = fakes.tally()
		for _, ch := range chatChannels {
			if before[ch].messages < 10 {
				return false
			}
		}
		return r.acked() >= len(jobs)/4
	}, "10 messages on every chat channel and a quarter of the events acked")
	r.waitHolding("serve-11", func() bool { return true }, "digests being sent")
	svc.kill9()
	killed := time.Now()
	dead := r.killedOwners("serve-11")
	before = fakes.tally()
	r.logf("killed -9 at ack floor %d of %d; messages so far: slack %d, discord %d, telegram %d, emails %d",
		r.acked(), len(jobs), before[store.ChannelSlack].messages, before[store.ChannelDiscord].messages,
		before[store.ChannelTelegram].messages, r.sink.Stats().Messages)

	r.startService("serve-11-restarted", map[string]string{"JOBALERT_INSTANCE": "serve-11"})
	r.waitTakenOver("serve-11", dead, killed)
	<-p.done
	res, _ := r.waitRecovered(killed, 2*time.Minute, 2*time.Second)
	r.check(res, allow{resentDigests: workers})

	// Every chat channel: all pairs, within the bound of the email check's
	// wait plus a bounded poll for the last messages.
	var got map[string]chatResult
	complete := func() bool {
		got = map[string]chatResult{}
		tal := fakes.tally()
		done := true
		for _, ch := range chatChannels {
			got[ch] = tal[ch].against(r.expected)
			done = done && got[ch].lost == 0
		}
		return done
	}
	deadline := time.Now().Add(30 * time.Second)
	for !complete() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	for _, ch := range chatChannels {
		c := got[ch]
		line := fmt.Sprintf("scenario=11 channel=%s expected=%d lost=%d duplicates=%d dup_subscriptions=%d messages=%d (bound: %d subscriptions, the digests in flight)",
			ch, len(r.expected), c.lost, c.dups, c.dupSubs, c.messages, workers)
		fmt.Println(line)
		r.logf("%s", line)
		if c.lost > 0 {
			t.Errorf("%s: lost %d of %d expected pairs", ch, c.lost, len(r.expected))
		}
		if c.dupSubs > workers {
			t.Errorf("%s: %d subscriptions got a pair twice (%d duplicate listings); at most %d digests are in flight at a kill",
				ch, c.dupSubs, c.dups, workers)
		}
	}
	unexpected := 0
	for _, tal := range fakes.tally() {
		for p := range tal.pairs {
			if !r.expected[p] {
				unexpected++
			}
		}
	}
	if unexpected > 0 {
		t.Errorf("%d chat listings of pairs matcher.Reference does not expect", unexpected)
	}
}
