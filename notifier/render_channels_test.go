package notifier_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/notifier"
)

func TestChannelDisabledNotice(t *testing.T) {
	sink := mustSink(t)
	m := mustMailer(t, sink, notifier.MailerConfig{})
	r := mustRenderer(t, "https://jobalert.test")
	for _, tc := range []struct{ ch, subject, says string }{
		{"slack", "Your Slack alerts were turned off", "the Slack webhook no longer exists"},
		{"discord", "Your Discord alerts were turned off", "the Discord webhook no longer exists"},
		{"telegram", "Your Telegram alerts were turned off", "it was blocked"},
	} {
		msg, err := r.ChannelDisabled(notifier.ChannelDisabledEmail{To: "ada@example.com", Channel: tc.ch,
			Reason: "HTTP 404 <no_service>", ManageURL: "https://jobalert.test/manage?token=T"})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Send(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		got := sink.To("ada@example.com")
		n := got[len(got)-1]
		if n.Subject != tc.subject {
			t.Errorf("%s: subject got %q, want %q", tc.ch, n.Subject, tc.subject)
		}
		txt := text(n)
		for _, want := range []string{tc.says, "HTTP 404 <no_service>", "other channels are not affected", "https://jobalert.test/manage?token=T"} {
			if !strings.Contains(txt, want) {
				t.Errorf("%s: text lacks %q:\n%s", tc.ch, want, txt)
			}
		}
		if !strings.Contains(n.HTML, "HTTP 404 &lt;no_service&gt;") || !strings.Contains(n.HTML, "Manage this alert") {
			t.Errorf("%s: html lacks the escaped reason or the button:\n%s", tc.ch, n.HTML)
		}
		if n.Header.Get("List-Unsubscribe") != "" {
			t.Errorf("%s: the notice carries List-Unsubscribe", tc.ch)
		}
	}
	if _, err := r.ChannelDisabled(notifier.ChannelDisabledEmail{To: "ada@example.com", Channel: "slack"}); err == nil {
		t.Error("a notice without the manage URL: got no error")
	}
}

func TestRollupDigestSubject(t *testing.T) {
	r := mustRenderer(t, "https://jobalert.test")
	d := sampleDigest("ada@example.com")
	d.Rollup = true
	msg, err := r.Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	subj := msg.GetGenHeader("Subject")
	if len(subj) != 1 || !strings.Contains(subj[0], "more") || !strings.HasSuffix(subj[0], "matched after your daily limit") {
		t.Errorf("rollup subject: got %q, want \"N more … matched after your daily limit\"", subj)
	}
}
