package clinical

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/airlockhq/airlock/shared/ops"
)

// metrics are the staff app's Prometheus series, served only on
// CLINICAL_METRICS_ADDR. Labels are route templates, methods, status codes
// and fixed outcome names: never an email, an address, a name or an id.
type metrics struct {
	registry     *prometheus.Registry
	duration     *prometheus.HistogramVec // route, method, code
	logins       *prometheus.CounterVec   // result
	exports      *prometheus.CounterVec   // format
	auditAppends prometheus.Counter
	// auditWentBack counts what serve's head check found: the entry it last
	// appended or saw gone or replaced, or entries missing below the head.
	auditWentBack prometheus.Counter
}

// Login outcomes, the only values of the result label.
const (
	loginSuccess   = "success"   // password (and code) right: a session was issued
	loginFailure   = "failure"   // wrong email, password or code (401)
	loginThrottled = "throttled" // refused by the attempt throttle (429)
	loginRefused   = "refused"   // right credentials for an account that may not log in now (403)
	loginError     = "error"     // anything else (a 5xx, a bad form)
)

func newMetrics(pool *pgxpool.Pool, log *slog.Logger) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "airlock_clinical_http_request_duration_seconds",
			Help:    "Time to answer a request, by route template, method and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "code"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_clinical_logins_total",
			Help: "Login attempts by result: success, failure (wrong email, password or code), throttled (429), refused (403: a missing or stale form token, or an account that may not log in now), error.",
		}, []string{"result"}),
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_clinical_exports_total",
			Help: "Exports downloaded from the staff app, by format (csv, ndjson).",
		}, []string{"format"}),
		auditAppends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_clinical_audit_appends_total",
			Help: "Audit entries this process appended.",
		}),
		auditWentBack: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_clinical_audit_head_went_back_total",
			Help: "Times the audit chain head check found the chain gone backwards: the entry this process last appended or saw is gone or replaced, or entries below the head are missing (each logged as \"audit chain head went backwards\").",
		}),
	}
	for _, r := range []string{loginSuccess, loginFailure, loginThrottled, loginRefused, loginError} {
		m.logins.WithLabelValues(r) // every series exists from the start, so rate() sees the first one
	}
	for _, f := range []string{"csv", "ndjson"} {
		m.exports.WithLabelValues(f)
	}
	m.registry.MustRegister(m.duration, m.logins, m.exports, m.auditAppends, m.auditWentBack,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		m.registry.MustRegister(&auditHeadCollector{pool: pool, log: log})
	}
	return m
}

// observe records each request's duration under its route template, and
// counts logins and exports by outcome.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" || (strings.Contains(route, "*") && !strings.HasPrefix(route, "/static/")) {
			route = "unmatched"
		}
		method, status := c.Request().Method, c.Response().Status
		s.metrics.duration.WithLabelValues(route, ops.MethodLabel(method), strconv.Itoa(status)).Observe(time.Since(start).Seconds())
		if method != http.MethodPost {
			return nil
		}
		switch route {
		case "/login":
			result := loginError
			switch status {
			case http.StatusSeeOther:
				result = loginSuccess
			case http.StatusUnauthorized:
				result = loginFailure
			case http.StatusTooManyRequests:
				result = loginThrottled
			case http.StatusForbidden:
				result = loginRefused
			}
			s.metrics.logins.WithLabelValues(result).Inc()
		}
		return nil
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// auditHeadCollector reads the audit chain's head number at scrape time:
// it only grows, so a drop (entries cut off the end) is an alert.
type auditHeadCollector struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

var descAuditHead = prometheus.NewDesc("airlock_clinical_audit_head_seq",
	"Number of the newest audit entry (0 for an empty log); it never goes down unless entries were removed.", nil, nil)

func (c *auditHeadCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descAuditHead }

func (c *auditHeadCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var seq int64
	if err := c.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM audit_log`).Scan(&seq); err != nil {
		c.log.Warn("metrics: cannot read the audit head", "error", err.Error())
		return
	}
	ch <- prometheus.MustNewConstMetric(descAuditHead, prometheus.GaugeValue, float64(seq))
}
