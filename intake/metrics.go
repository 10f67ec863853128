package intake

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are intake's Prometheus series. Labels are only route templates
// (or "unmatched"), a fixed set of methods (ops.MethodLabel), status codes and
// form ids (which are public and come from the registry,
// never from the request), so nothing patient-derived or client-derived
// becomes a series.
type metrics struct {
	registry    *prometheus.Registry
	submissions *prometheus.CounterVec   // form, channel, status
	duration    *prometheus.HistogramVec // route, method, code
	rateLimited *prometheus.CounterVec   // scope
	honeypot    *prometheus.CounterVec   // form
	csrf        prometheus.Counter
	sealSeconds prometheus.Histogram
	// repeats and replayKeyUsed count sending twice (replay.go), by form.
	repeats       *prometheus.CounterVec
	replayKeyUsed *prometheus.CounterVec
}

func newMetrics(rl *rateLimiter) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		registry: reg,
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_intake_submissions_total",
			Help: "Submissions by form id, channel (html, api) and HTTP status: 201 (api) and 303 (html, to the receipt page) accepted, anything else rejected.",
		}, []string{"form", "channel", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "airlock_intake_http_request_duration_seconds",
			Help:    "Time to answer a request, by route template, method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "code"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_intake_rate_limited_total",
			Help: "Submissions refused with 429, by the limit that refused them (client or global).",
		}, []string{"scope"}),
		honeypot: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_intake_honeypot_total",
			Help: "HTML submissions refused because the hidden honeypot field was filled in.",
		}, []string{"form"}),
		csrf: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_intake_csrf_failures_total",
			Help: "HTML submissions refused with 403 for a missing or wrong CSRF token.",
		}),
		sealSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "airlock_intake_seal_and_store_seconds",
			Help:    "Time to seal a validated submission and insert it.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		repeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_intake_repeated_submissions_total",
			Help: "Submissions posted again (the same rendered form or Idempotency-Key with the same answers): answered with the first receipt, nothing stored.",
		}, []string{"form"}),
		replayKeyUsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_intake_replay_key_conflicts_total",
			Help: "Submissions refused because their rendered form or Idempotency-Key was already used with other answers.",
		}, []string{"form"}),
	}
	reg.MustRegister(m.submissions, m.duration, m.rateLimited, m.honeypot, m.csrf, m.sealSeconds, m.repeats, m.replayKeyUsed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if rl != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "airlock_intake_rate_limit_clients",
			Help: "Client addresses currently tracked by the per-client rate limit (the addresses themselves are never exported).",
		}, func() float64 { return float64(rl.size()) }))
	}
	return m
}

// submission counts one submission attempt against a known form.
func (m *metrics) submission(form, channel string, status int) {
	m.submissions.WithLabelValues(form, channel, strconv.Itoa(status)).Inc()
}

// handler serves /metrics for the separate metrics listener.
func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	return mux
}
