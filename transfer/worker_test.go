package transfer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/transfer"
)

// A pass that panics (here: a Mover without databases) is recovered and
// logged, on the wake-up path and on the schedule, and the worker goes on
// running passes and stops cleanly.
func TestWorkerRecoversAPanickingPass(t *testing.T) {
	t.Parallel()
	var log lockedBuffer
	w := &transfer.Worker{
		Mover:    &transfer.Mover{},
		Schedule: "@every 1s",
		Debounce: time.Millisecond,
		Log:      slog.New(slog.NewJSONHandler(&log, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	// The start-up pass (a wake-up) and at least one scheduled pass.
	waitFor(t, 10*time.Second, func() bool { return strings.Count(log.String(), "pass panicked") >= 2 },
		"two recovered panics; log:\n%s", log.String)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not stop")
	}
	if !strings.Contains(log.String(), `"stack":`) {
		t.Errorf("a recovered panic is logged without its stack")
	}
}

func TestMetricsTellWhenTheQueueCannotBeRead(t *testing.T) {
	t.Parallel()
	var failing bool
	pending := int64(7)
	m := transfer.NewMetrics(func(context.Context) (*transfer.Status, error) {
		if failing {
			return nil, errors.New("connection refused")
		}
		return &transfer.Status{Pending: pending, OldestPendingSeconds: 42, UnknownKey: new(int64)}, nil
	}, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	m.ObservePass(transfer.Summary{Moved: 3, Quarantined: 1, Expired: 2, Seconds: 0.5}, nil)
	m.ObservePass(transfer.Summary{Skipped: true}, nil)
	m.ObservePass(transfer.Summary{Moved: 1, Seconds: 0.1}, errors.New("clinical database: gone"))
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	body := scrape()
	for name, want := range map[string]string{
		"airlock_transfer_status_up":                      "1",
		"airlock_transfer_pending":                        "7",
		"airlock_transfer_oldest_pending_seconds":         "42",
		"airlock_transfer_unknown_key":                    "0",
		"airlock_transfer_moved_total":                    "4",
		"airlock_transfer_quarantined_rows_total":         "1",
		"airlock_transfer_expired_by_process_total":       "2",
		"airlock_transfer_pass_duration_seconds_count":    "2",
		`airlock_transfer_passes_total{result="ok"}`:      "1",
		`airlock_transfer_passes_total{result="skipped"}`: "1",
		`airlock_transfer_passes_total{result="failed"}`:  "1",
	} {
		if got := metricValue(t, body, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	if strings.Contains(body, "airlock_transfer_last_pass_timestamp_seconds ") {
		t.Errorf("a last pass time is exposed before any pass was recorded")
	}
	failing = true
	body = scrape()
	if got := metricValue(t, body, "airlock_transfer_status_up"); got != "0" {
		t.Errorf("status_up = %s with the databases unreadable, want 0", got)
	}
	if strings.Contains(body, "airlock_transfer_pending ") {
		t.Errorf("a pending count is exposed although it could not be read")
	}
}
