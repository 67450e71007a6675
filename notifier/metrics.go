package notifier

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what the notifier does. A nil *Metrics counts nothing.
type Metrics struct {
	digests *prometheus.CounterVec
	emails  *prometheus.CounterVec
}

// NewMetrics registers the notifier's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		digests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_digests_total", Help: "Digests handled, by outcome (sent, empty, dropped).",
		}, []string{"outcome"}),
		emails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_emails_total", Help: "Email send attempts, by outcome (sent, deferred, bounced, rejected).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.digests, m.emails)
	return m
}

func (m *Metrics) digest(outcome string) {
	if m != nil {
		m.digests.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) email(outcome string) {
	if m != nil {
		m.emails.WithLabelValues(outcome).Inc()
	}
}
