package clinical

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"
)

// runJobs runs the periodic work of `clinical serve` until ctx ends: the
// audit chain head to the log (so a truncated audit log can be caught
// against it), expired sessions and throttling rows cleaned up, and the
// retention policy when one is set. A failing job is logged and tried again
// at its next tick.
func (s *Server) runJobs(ctx context.Context, cfg *ServeConfig) {
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

// logAuditHead writes the chain head as a JSON log line: the newest entry's
// id and MAC and the number of entries. An attacker who deletes the tail
// of the audit log cannot make it match a head already logged elsewhere.
func (s *Server) logAuditHead(ctx context.Context) {
	n, id, mac, err := s.audit.Head(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Error("read audit chain head failed", "error", err.Error())
	}
	if err != nil {
		return
	}
	s.log.Info("audit chain head", "entries", n, "head_id", id, "head_mac", hex.EncodeToString(mac))
}

// Head returns the number of audit entries and the newest entry's id and
// MAC (zero and nil for an empty log).
func (a *Audit) Head(ctx context.Context) (count, id int64, mac []byte, err error) {
	err = a.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_log), coalesce((SELECT max(id) FROM audit_log), 0),
  (SELECT mac FROM audit_log ORDER BY id DESC LIMIT 1)`).Scan(&count, &id, &mac)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("read audit head: %w", err)
	}
	return count, id, mac, nil
}

// RunRetention deletes submissions that have been done for longer than
// retention, writing each batch's ids to the audit log before the batch
// commits. It returns how many it deleted.
func RunRetention(ctx context.Context, subs *Submissions, audit *Audit, actor string, retention time.Duration, now time.Time, log *slog.Logger) (int, error) {
	cutoff := now.Add(-retention).UTC()
	n, err := subs.DeleteDoneBefore(ctx, cutoff, func(ids []int64) error {
		_, err := audit.Append(ctx, actor, "retention.delete", "", map[string]any{
			"cutoff": cutoff.Format(time.RFC3339), "count": len(ids), "ids": ids})
		return err
	})
	if log != nil {
		log.Info("retention pass", "cutoff", cutoff.Format(time.RFC3339), "deleted", n)
	}
	return n, err
}
