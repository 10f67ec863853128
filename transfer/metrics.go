package transfer

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/airlockhq/airlock/shared/ops"
)

// Metrics are `transfer run`'s Prometheus metrics. The queue gauges are read
// from the databases at each scrape (the same query as `transfer status`),
// so they tell the truth even while passes fail; the counters and the
// duration histogram count this process's passes. Labels never carry
// content: the only label is a pass's result.
type Metrics struct {
	registry *prometheus.Registry

	passes            *prometheus.CounterVec // result: ok, skipped, interrupted, failed
	duration          prometheus.Histogram
	moved             prometheus.Counter
	quarantined       prometheus.Counter
	duplicates        prometheus.Counter
	superseded        prometheus.Counter
	expired           prometheus.Counter
	quarantineExpired prometheus.Counter
}

// NewMetrics registers the metrics; status reads the queue state for the
// gauges at scrape time.
func NewMetrics(status func(context.Context) (*Status, error), log *slog.Logger) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_transfer_passes_total",
			Help: "Passes run by this process, by result (ok, skipped: another instance held the lock, interrupted: shutdown, failed).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "airlock_transfer_pass_duration_seconds",
			Help:    "Duration of the passes this process ran (skipped ones excluded).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 10), // 10 ms to about 40 s
		}),
		moved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_transfer_moved_total",
			Help: "Submissions this process delivered to clinical.",
		}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_transfer_quarantined_rows_total",
			Help: "Rows this process quarantined.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_transfer_duplicates_total",
			Help: "Rows this process found already delivered (a replay, or a retry after a crash) and deleted from intake.",
		}),
		superseded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_transfer_superseded_total",
			Help: "Submissions this process marked superseded by a correction.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_transfer_expired_by_process_total",
			Help: "Rows this process expired from intake unmoved (see airlock_transfer_expired_total for all instances, ever).",
		}),
		quarantineExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_transfer_quarantine_expired_by_process_total",
			Help: "Quarantined rows this process deleted after TRANSFER_QUARANTINE_RETENTION.",
		}),
	}
	for _, result := range []string{"ok", "skipped", "interrupted", "failed"} {
		m.passes.WithLabelValues(result) // so every series exists from the start
	}
	m.registry.MustRegister(m.passes, m.duration, m.moved, m.quarantined, m.duplicates, m.superseded,
		m.expired, m.quarantineExpired, &statusCollector{read: status, log: log},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObservePass counts one pass's outcome. m may be nil.
func (m *Metrics) ObservePass(sum Summary, err error) {
	if m == nil {
		return
	}
	result := "ok"
	switch {
	case sum.Skipped:
		m.passes.WithLabelValues("skipped").Inc()
		return
	case sum.Interrupted:
		result = "interrupted"
	case err != nil:
		result = "failed"
	}
	m.passes.WithLabelValues(result).Inc()
	m.duration.Observe(sum.Seconds)
	m.moved.Add(float64(sum.Moved))
	m.quarantined.Add(float64(sum.Quarantined))
	m.duplicates.Add(float64(sum.Duplicates))
	m.superseded.Add(float64(sum.Superseded))
	m.expired.Add(float64(sum.Expired))
	m.quarantineExpired.Add(float64(sum.QuarantineExpired))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Serve serves /metrics, /livez and /readyz (ready; /healthz is its alias)
// on ln until ctx is done.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, ready http.Handler) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	ops.HandleHealth(mux, ready)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// statusCollector turns the queue state into gauges at scrape time.
type statusCollector struct {
	read func(context.Context) (*Status, error)
	log  *slog.Logger
}

var (
	descUp = prometheus.NewDesc("airlock_transfer_status_up",
		"1 when the last scrape could read the queue state from both databases, else 0 (and the gauges below are absent).", nil, nil)
	descPending = prometheus.NewDesc("airlock_transfer_pending",
		"Rows in intake awaiting a move (those under an unknown key included).", nil, nil)
	descOldest = prometheus.NewDesc("airlock_transfer_oldest_pending_seconds",
		"Age of the oldest row waiting in intake; 0 when none waits.", nil, nil)
	descLastSuccession = prometheus.NewDesc("airlock_transfer_last_succession",
		"Highest succession number delivered to clinical.", nil, nil)
	descQuarantined = prometheus.NewDesc("airlock_transfer_quarantined",
		"Rows held in clinical's quarantine now.", nil, nil)
	descUnknownKey = prometheus.NewDesc("airlock_transfer_unknown_key",
		"Pending rows sealed to a key id this worker does not hold: a key still to be added, or a swapped recipient key.", nil, nil)
	descExpired = prometheus.NewDesc("airlock_transfer_expired_total",
		"Rows ever expired from intake unmoved after TRANSFER_RETENTION, by any instance (from the operations log).", nil, nil)
	descQuarantineExpired = prometheus.NewDesc("airlock_transfer_quarantine_expired_total",
		"Quarantined rows ever deleted after TRANSFER_QUARANTINE_RETENTION, by any instance.", nil, nil)
	descLastPass = prometheus.NewDesc("airlock_transfer_last_pass_timestamp_seconds",
		"When the last pass without error (by any instance) finished, as a Unix time; absent before the first.", nil, nil)
)

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descPending, descOldest, descLastSuccession, descQuarantined,
		descUnknownKey, descExpired, descQuarantineExpired, descLastPass} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.read(ctx)
	if err != nil {
		c.log.Warn("metrics: cannot read the queue state", "error", err.Error())
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(s.Pending))
	ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, float64(s.OldestPendingSeconds))
	ch <- prometheus.MustNewConstMetric(descLastSuccession, prometheus.GaugeValue, float64(s.LastSuccession))
	ch <- prometheus.MustNewConstMetric(descQuarantined, prometheus.GaugeValue, float64(s.Quarantined))
	if s.UnknownKey != nil {
		ch <- prometheus.MustNewConstMetric(descUnknownKey, prometheus.GaugeValue, float64(*s.UnknownKey))
	}
	ch <- prometheus.MustNewConstMetric(descExpired, prometheus.CounterValue, float64(s.ExpiredTotal))
	ch <- prometheus.MustNewConstMetric(descQuarantineExpired, prometheus.CounterValue, float64(s.QuarantineExpiredTotal))
	if s.LastPassAt != nil {
		ch <- prometheus.MustNewConstMetric(descLastPass, prometheus.GaugeValue, float64(s.LastPassAt.UnixNano())/1e9)
	}
}
