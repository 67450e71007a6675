package notifier

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/schedule"
)

// Metrics counts what the notifier and the emails of the API do. A nil
// *Metrics counts nothing.
type Metrics struct {
	digests *prometheus.CounterVec
	emails  *prometheus.CounterVec
	smtp    prometheus.Histogram
	chats   *prometheus.CounterVec
	dead    *prometheus.CounterVec
}

// Email kinds, the kind label of jobalert_emails_total.
const (
	KindAlert        = "alert"        // an instant subscription's email
	KindDigest       = "digest"       // a daily or weekly digest
	KindConfirmation = "confirmation" // the double opt-in (API)
	KindNotice       = "notice"       // any other email the service writes (API: links, cap notice; a disabled webhook)
)

// Label values known in advance: every series of them exists, at zero,
// from the start.
var (
	digestOutcomes = []string{"sent", "empty", "dropped", "deferred"}
	emailKinds     = []string{KindAlert, KindDigest, KindConfirmation, KindNotice}
	emailOutcomes  = []string{"sent", "deferred", "bounced", "rejected", "failed"}
	chatChannels   = []string{"slack", "discord", "telegram"} // store.ChatChannels
	chatOutcomes   = []string{"sent", "deferred", "rejected", "gone"}
)

// NewMetrics registers the notifier's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		digests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_digests_total",
			Help: "Digests handled, by outcome (sent, empty, dropped; deferred: each attempt put back for a retry).",
		}, []string{"outcome"}),
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_emails_total",
			Help: "Email send attempts, by kind (alert, digest, confirmation, notice) and outcome (sent; deferred: a temporary failure; bounced: 5xx to RCPT; rejected: 5xx to the message; failed: any other error, e.g. TLS or login).",
		}, []string{"kind", "outcome"}),
		smtp: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "jobalert_smtp_send_duration_seconds",
			Help:    "Time of one SMTP send, from taking a pooled connection (or dialing one) to the server's answer, failures included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		chats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_chat_messages_total",
			Help: "Alerts posted to chat channels, one per send attempt, by channel (slack, discord, telegram) and outcome (sent; deferred: a temporary failure, retried; held: not tried, its service failing, put off; rejected: refused for good, dead-lettered; gone: the destination was deleted or blocked us, the channel is turned off).",
		}, []string{"channel", "outcome"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_chat_dead_letters_total",
			Help: "Chat alerts dead-lettered (refused for good, or failed their every try), by channel.",
		}, []string{"channel"}),
	}
	reg.MustRegister(m.digests, m.emails, m.smtp, m.chats, m.dead)
	for _, c := range chatChannels {
		m.dead.WithLabelValues(c)
		for _, o := range chatOutcomes {
			m.chats.WithLabelValues(c, o)
		}
	}
	for _, o := range digestOutcomes {
		m.digests.WithLabelValues(o)
	}
	for _, k := range emailKinds {
		for _, o := range emailOutcomes {
			m.emails.WithLabelValues(k, o)
		}
	}
	return m
}

func (m *Metrics) digest(outcome string) {
	if m != nil {
		m.digests.WithLabelValues(outcome).Inc()
	}
}

// CountEmail counts one email of kind (KindAlert, ...) by the outcome of
// its send, err (nil: sent).
func (m *Metrics) CountEmail(kind string, err error) {
	if m != nil {
		m.emails.WithLabelValues(kind, EmailOutcome(err)).Inc()
	}
}

// EmailOutcome is the outcome label of a send that returned err.
func EmailOutcome(err error) string {
	var perm *PermanentError
	switch {
	case err == nil:
		return "sent"
	case errors.As(err, &perm) && perm.Stage != "rcpt":
		return "rejected"
	case errors.As(err, &perm):
		return "bounced"
	case IsTemporary(err):
		return "deferred"
	}
	return "failed"
}

// emailKind is the kind of a subscription's email of frequency f.
func emailKind(f string) string {
	if f == schedule.Instant {
		return KindAlert
	}
	return KindDigest
}

// chat counts one chat send of channel ch by the outcome err.
func (m *Metrics) chat(ch string, err error) {
	if m == nil {
		return
	}
	o := "deferred"
	switch {
	case err == nil:
		o = "sent"
	case errors.Is(err, channel.ErrGone):
		o = "gone"
	case errors.Is(err, channel.ErrPermanent):
		o = "rejected"
	}
	m.chats.WithLabelValues(ch, o).Inc()
}

// chatHeld counts a chat send put off because its service is failing
// (breaker.go).
func (m *Metrics) chatHeld(ch string) {
	if m != nil {
		m.chats.WithLabelValues(ch, "held").Inc()
	}
}

func (m *Metrics) chatDead(ch string) {
	if m != nil {
		m.dead.WithLabelValues(ch).Inc()
	}
}

func (m *Metrics) smtpSend(d time.Duration) {
	if m != nil {
		m.smtp.Observe(d.Seconds())
	}
}
