package clinical

import (
	"context"
	"log/slog"
	"time"

	"github.com/airlockhq/airlock/clinical/notice"
)

// runJobs runs the periodic work of `clinical serve` until ctx ends: the
// audit chain head checked and written to the log (so a truncated audit log
// can be caught against it), expired sessions and throttling rows cleaned
// up, and the retention policy when one is set. A failing job is logged and
// tried again at its next tick.
func (s *Server) runJobs(ctx context.Context, cfg *ServeConfig) {
	if cfg.Notify != nil {
		// The digest runs beside the other jobs and ends with them.
		done := make(chan struct{})
		go func() {
			defer close(done)
			notice.New(cfg.Notify, s.pool, s.formTitle, s.log).Run(ctx)
		}()
		defer func() { <-done }()
		s.log.Info("notices on", "every", cfg.Notify.Interval.String(), "recipients", len(cfg.Notify.To))
	}
	head := time.NewTicker(cfg.AuditHeadInterval)
	defer head.Stop()
	hourly := time.NewTicker(time.Hour)
	defer hourly.Stop()
	hourlyJobs := func() {
		jobCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		defer cancel()
		if err := s.accounts.Cleanup(jobCtx); err != nil && ctx.Err() == nil {
			s.log.Error("session cleanup failed", "error", err.Error())
		}
		if cfg.Retention > 0 {
			if _, err := RunRetention(jobCtx, s.subs, s.audit, "system:retention", cfg.Retention, s.now(), s.log); err != nil && ctx.Err() == nil {
				s.log.Error("retention failed", "error", err.Error())
			}
		}
	}
	hourlyJobs()
	for {
		select {
		case <-ctx.Done():
			return
		case <-head.C:
			s.logAuditHead(ctx)
		case <-hourly.C:
			hourlyJobs()
		}
	}
}

// logAuditHead writes the chain head as a JSON log line: the number of
// entries, the newest entry's id, number and MAC, and "head", the same as
// ID:MACHEX for `clinical audit verify --head`. Someone who later cuts the
// tail of the audit log cannot make the log match a head already shipped
// elsewhere. It also logs an error when the head went backwards since this
// process last appended or saw it (Audit.CheckHead).
func (s *Server) logAuditHead(ctx context.Context) {
	head, wentBack, err := s.audit.CheckHead(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("read audit chain head failed", "error", err.Error())
		}
		return
	}
	for _, what := range wentBack {
		s.log.Error("audit chain head went backwards", "reason", what, "head", head.String())
		s.metrics.auditWentBack.Inc()
	}
	logHead(s.log, head)
}

// RunRetention deletes submissions that have been done for longer than
// retention; each batch commits with the audit entry that lists its ids.
// It returns how many it deleted.
func RunRetention(ctx context.Context, subs *Submissions, audit *Audit, actor string, retention time.Duration, now time.Time, log *slog.Logger) (int, error) {
	cutoff := now.Add(-retention).UTC().Truncate(time.Second)
	n, err := subs.DeleteDoneBefore(ctx, audit, actor, cutoff)
	if log != nil {
		log.Info("retention pass", "cutoff", cutoff.Format(time.RFC3339), "deleted", n)
	}
	return n, err
}

// formTitle names a form in a notice: its title, or its id when it has none
// or is no longer configured.
func (s *Server) formTitle(id string) string {
	if q, ok := s.forms.Get(id); ok && q.Title != "" {
		return q.Title
	}
	return id
}
