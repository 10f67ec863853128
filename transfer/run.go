package transfer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/robfig/cron/v3"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/ops"
)

// NotifyChannel is the channel intake's insert trigger notifies (with an
// empty payload) after every insert into submissions.
const NotifyChannel = "airlock_submission"

// DefaultDebounce is how long a wake-up waits for more: a burst of inserts
// becomes one pass, and a single insert still reaches the clinic well within
// a second.
const DefaultDebounce = 200 * time.Millisecond

// DefaultMaxNotifyInterval bounds how far notify-triggered passes back off
// while they find nothing to do. Any intake login, the writer included, can
// NOTIFY the channel: a flood of empty wake-ups costs at most one pass per
// this interval, while wake-ups for real rows keep the Debounce pace (or
// faster while rows keep coming: see wakeUps).
const DefaultMaxNotifyInterval = 5 * time.Second

// Worker is `transfer run`: passes on a cron schedule, plus a pass soon after
// each NOTIFY from intake. Passes within the process never overlap (and the
// pass lock keeps passes of other instances apart); an overlapping cron tick
// is skipped and a panic in a pass is recovered and logged.
type Worker struct {
	Mover    *Mover
	Schedule string // cron spec (robfig/cron standard parser: five fields or @every, @hourly, ...)
	// ListenConfig connects to intake for LISTEN; nil listens to nothing
	// and only the schedule runs passes.
	ListenConfig *pgx.ConnConfig
	Debounce     time.Duration
	// MaxNotifyInterval is the longest wait between notify-triggered passes:
	// after a wake-up pass that changed nothing the wait before the next
	// doubles (from Debounce) up to it, and a pass that moved something
	// brings it back to Debounce. Zero means DefaultMaxNotifyInterval.
	MaxNotifyInterval time.Duration
	Metrics           *Metrics // may be nil
	Log               *slog.Logger

	passMu   sync.Mutex  // one pass at a time in this process
	lastIdle atomic.Bool // the last pass changed nothing
	lastBusy atomic.Bool // the last pass ran without error and changed something

	progressMu sync.Mutex
	lastGood   time.Time // start, or the end of the last pass that ran without error or was skipped
}

// listenCheckEvery is how often an idle LISTEN connection is pinged, so a
// connection that died silently (no RST from a vanished server) is noticed.
const listenCheckEvery = 30 * time.Second

// Run runs passes until ctx is done, then waits for the pass in flight to
// finish its batch and returns.
func (w *Worker) Run(ctx context.Context) error {
	sched, err := cron.ParseStandard(w.Schedule)
	if err != nil {
		return cli.Usagef("TRANSFER_SCHEDULE: %v", err)
	}
	logger := cronLogger{w.Log}
	c := cron.New(cron.WithLogger(logger), cron.WithChain(cron.Recover(logger), cron.SkipIfStillRunning(logger)))
	c.Schedule(sched, cron.FuncJob(func() { w.pass(ctx, "schedule") }))
	// Wake-ups run outside cron (so a tick in progress never swallows one),
	// with the same panic recovery.
	onWake := cron.NewChain(cron.Recover(logger)).Then(cron.FuncJob(func() { w.pass(ctx, "notify") }))

	wake := make(chan struct{}, 1)
	wake <- struct{}{} // a first pass now: rows may have waited while no worker ran
	var wg sync.WaitGroup
	wg.Go(func() { w.wakeUps(ctx, wake, onWake) })
	if w.ListenConfig != nil {
		wg.Go(func() { w.listen(ctx, wake) })
	}
	c.Start()
	w.Log.Info("transfer worker started", "schedule", w.Schedule, "listen", w.ListenConfig != nil,
		"batch_size", w.Mover.BatchSize, "retention", w.Mover.Retention.String(),
		"quarantine_retention", w.Mover.QuarantineRetention.String())

	<-ctx.Done()
	w.Log.Info("transfer worker stopping: finishing the batch in flight")
	stopped := c.Stop()
	wg.Wait()
	<-stopped.Done()
	w.Log.Info("transfer worker stopped")
	return nil
}

// pass runs one pass unless the worker is stopping, and logs and counts it.
func (w *Worker) pass(ctx context.Context, trigger string) {
	w.passMu.Lock()
	defer w.passMu.Unlock()
	if ctx.Err() != nil {
		return
	}
	sum, err := w.Mover.Pass(ctx)
	w.lastIdle.Store(err == nil && sum.Idle())
	w.lastBusy.Store(err == nil && !sum.Skipped && !sum.Idle())
	w.Metrics.ObservePass(sum, err)
	logPass(w.Log, trigger, sum, err)
	if err == nil && !sum.Interrupted {
		// A skipped pass counts: another instance holds the lock and works.
		w.progressMu.Lock()
		w.lastGood = time.Now()
		w.progressMu.Unlock()
	}
}

// passMaxAge is how long /readyz accepts without a good pass: three
// scheduled intervals, at least five minutes.
func passMaxAge(schedule string, now time.Time) time.Duration {
	const floor = 5 * time.Minute
	sched, err := cron.ParseStandard(schedule)
	if err != nil {
		return floor
	}
	first := sched.Next(now)
	return max(3*sched.Next(first).Sub(first), floor)
}

// recentPass is /readyz's "last pass recent": nil while the last good pass
// (or the start) is within passMaxAge.
func (w *Worker) recentPass(context.Context) error {
	w.progressMu.Lock()
	last := w.lastGood
	w.progressMu.Unlock()
	now := time.Now()
	if age, limit := now.Sub(last), passMaxAge(w.Schedule, now); age > limit {
		return fmt.Errorf("no pass without error for %s (limit %s)", age.Round(time.Second), limit)
	}
	return nil
}

// Ready is the worker's /readyz: both databases answer, the keys are
// unlocked and a pass ran without error recently.
func (w *Worker) Ready() http.Handler {
	w.progressMu.Lock()
	if w.lastGood.IsZero() {
		w.lastGood = time.Now() // the grace of the first pass
	}
	w.progressMu.Unlock()
	m := w.Mover
	return ops.Ready(w.Log,
		ops.Probe{Name: "intake database", Check: m.Intake.Ping},
		ops.Probe{Name: "clinical database", Check: m.Clinical.Ping},
		ops.Probe{Name: "keys unlocked", Check: func(context.Context) error {
			if len(m.Keys) == 0 {
				return errors.New("no key unlocked")
			}
			return nil
		}},
		ops.Probe{Name: "last pass recent", Check: w.recentPass},
	)
}

// logPass writes one JSON log line per pass: counts and timing, never content.
func logPass(log *slog.Logger, trigger string, sum Summary, err error) {
	if sum.Skipped {
		log.Debug("pass skipped: another instance holds the pass lock", "trigger", trigger)
		return
	}
	attrs := []any{"trigger", trigger, "moved", sum.Moved, "quarantined", sum.Quarantined, "duplicates", sum.Duplicates,
		"expired", sum.Expired, "quarantine_expired", sum.QuarantineExpired, "superseded", sum.Superseded,
		"unknown_key", sum.UnknownKey, "unknown_form", sum.UnknownForm, "failed", sum.Failed,
		"results_moved", sum.ResultsMoved, "results_expired", sum.ResultsExpired, "seconds", sum.Seconds}
	switch {
	case sum.Interrupted:
		log.Info("pass stopped early on shutdown, after the batch in flight", attrs...)
	case err != nil:
		log.Error("pass failed; what it moved is moved, the rest waits for the next pass",
			append(attrs, "error", err.Error())...)
	default:
		log.Info("pass finished", attrs...)
	}
}

// wakeUps runs a pass for each wake-up, after waiting Debounce for more.
// Wake-ups that arrive during a pass or the wait make one more pass after
// it: any number of them coalesce into one. The wait doubles after each pass
// that changed nothing, up to MaxNotifyInterval: NOTIFY spam is
// rate-limited. After a pass that moved something, rows are flowing: the
// next pass follows a wake-up after only Debounce/8, so under a
// steady stream a row waits about one pass, not a pass and the debounce
// (time to clinic, docs/transfer.md).
func (w *Worker) wakeUps(ctx context.Context, wake chan struct{}, job cron.Job) {
	limit := w.MaxNotifyInterval
	if limit <= 0 {
		limit = DefaultMaxNotifyInterval
	}
	wait := w.Debounce // the least time from one notify pass to the next
	var lastEnd time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		}
		delay := max(w.Debounce, time.Until(lastEnd.Add(wait)))
		if w.lastBusy.Load() {
			delay = time.Until(lastEnd.Add(w.Debounce / 8))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		select { // this pass covers whatever woke us meanwhile
		case <-wake:
		default:
		}
		job.Run()
		lastEnd = time.Now()
		if w.lastIdle.Load() {
			wait = min(max(2*wait, time.Millisecond), max(limit, w.Debounce))
		} else {
			wait = w.Debounce
		}
	}
}

// listen keeps a LISTEN connection to intake, reconnecting with backoff when
// it drops; while it is down the schedule alone runs passes.
func (w *Worker) listen(ctx context.Context, wake chan<- struct{}) {
	const minBackoff, maxBackoff = 500 * time.Millisecond, 30 * time.Second
	backoff := minBackoff
	for {
		err := w.listenOnce(ctx, wake, func() { backoff = minBackoff })
		if ctx.Err() != nil {
			return
		}
		w.Log.Warn("intake LISTEN connection lost; reconnecting (scheduled passes go on meanwhile)",
			"error", err.Error(), "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listenOnce connects, listens and signals wake for every notification until
// the connection fails or ctx is done.
func (w *Worker) listenOnce(ctx context.Context, wake chan<- struct{}, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, w.ListenConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	connected()
	w.Log.Info("listening for new submissions on intake", "channel", NotifyChannel)
	signal(wake) // rows may have arrived while no connection listened
	for {
		waitCtx, cancel := context.WithTimeout(ctx, listenCheckEvery)
		_, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			signal(wake)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return err
		}
	}
}

func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default: // a wake-up is already due
	}
}

// cronLogger hands cron's log lines to slog: its routine chatter at debug,
// skipped ticks at info, recovered panics at error.
type cronLogger struct{ log *slog.Logger }

func (l cronLogger) Info(msg string, keysAndValues ...any) {
	if msg == "skip" {
		l.log.Info("scheduled pass skipped: the previous one is still running")
		return
	}
	l.log.Debug("cron: "+msg, keysAndValues...)
}

func (l cronLogger) Error(err error, msg string, keysAndValues ...any) {
	if msg == "panic" {
		l.log.Error("pass panicked (recovered; the next pass runs as usual)", append([]any{"error", err.Error()}, keysAndValues...)...)
		return
	}
	l.log.Error("cron: "+msg, append([]any{"error", err.Error()}, keysAndValues...)...)
}

// runWorker is `transfer run`: unlock the keys once, check both schemas, then
// run passes until SIGINT or SIGTERM.
func runWorker(ctx context.Context, env cli.Env) error {
	cfg, m, closeFn, err := startMover(ctx, env)
	if err != nil {
		return err
	}
	defer closeFn()
	listenCfg, err := pgx.ParseConfig(cfg.IntakeURL)
	if err != nil {
		return cli.Usagef("INTAKE_DATABASE_URL: malformed database URL")
	}
	if listenCfg.ConnectTimeout == 0 {
		listenCfg.ConnectTimeout = 5 * time.Second
	}
	if _, ok := listenCfg.RuntimeParams["application_name"]; !ok {
		listenCfg.RuntimeParams["application_name"] = "airlock-transfer-listen"
	}
	w := &Worker{Mover: m, Schedule: cfg.Schedule, ListenConfig: listenCfg, Debounce: DefaultDebounce, Log: m.Log}

	var wg sync.WaitGroup
	defer wg.Wait()
	if cfg.MetricsAddr != "" {
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("TRANSFER_METRICS_ADDR: %w", err)
		}
		var ids []string
		for id := range m.Keys {
			ids = append(ids, id.String())
		}
		w.Metrics = NewMetrics(func(ctx context.Context) (*Status, error) {
			return ReadStatus(ctx, m.Intake, m.Clinical, ids)
		}, m.Log)
		srvCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		defer stop() // after the worker has stopped: the last pass is counted
		wg.Go(func() {
			if err := w.Metrics.Serve(srvCtx, ln, w.Ready()); err != nil {
				m.Log.Error("metrics server stopped", "error", err.Error())
			}
		})
		m.Log.Info("metrics listening", "addr", ln.Addr().String())
	}
	return w.Run(ctx)
}
