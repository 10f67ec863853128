package notice

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// FormCount is how many new submissions one form received.
type FormCount struct {
	FormID string
	Title  string
	Count  int
}

// Digest is what one notice reports: counts only.
type Digest struct {
	Forms       []FormCount
	Quarantined int
}

// Submissions is the number of new submissions over all forms.
func (d Digest) Submissions() int {
	n := 0
	for _, f := range d.Forms {
		n += f.Count
	}
	return n
}

// Empty reports whether there is nothing to tell.
func (d Digest) Empty() bool { return d.Submissions() == 0 && d.Quarantined == 0 }

// Message words the digest. Only counts, form titles (which ops wrote) and
// this package's own words appear in it.
func (d Digest) Message() Message {
	var parts []string
	if n := d.Submissions(); n > 0 {
		parts = append(parts, plural(n, "new submission", "new submissions"))
	}
	if d.Quarantined > 0 {
		parts = append(parts, plural(d.Quarantined, "row quarantined", "rows quarantined"))
	}
	var b strings.Builder
	b.WriteString("New in Airlock since the last notice:\n\n")
	for _, f := range d.Forms {
		fmt.Fprintf(&b, "%s on %s\n", plural(f.Count, "new submission", "new submissions"), oneLine(f.Title))
	}
	if d.Quarantined > 0 {
		fmt.Fprintf(&b, "%s by transfer (see `transfer status` and docs/runbook.md)\n", plural(d.Quarantined, "row", "rows")+" quarantined")
	}
	b.WriteString("\nOpen the staff app to review them. This notice carries no patient data by design.\n")
	return Message{Subject: "Airlock: " + strings.Join(parts, "; "), Body: b.String()}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Notifier sends a digest every Config.Interval when something is new.
type Notifier struct {
	cfg     *Config
	pool    *pgxpool.Pool
	titleOf func(formID string) string
	log     *slog.Logger
	now     func() time.Time
}

// New returns a Notifier over the clinical database (a login granted
// airlock_clinical_app). titleOf names a form for the digest.
func New(cfg *Config, pool *pgxpool.Pool, titleOf func(formID string) string, log *slog.Logger) *Notifier {
	return &Notifier{cfg: cfg, pool: pool, titleOf: titleOf, log: log, now: time.Now}
}

// Run sends digests until ctx ends. A failed send is logged and its rows stay
// unnotified, so the next tick reports them.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d, err := n.Tick(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				n.log.Error("notice not sent", "error", err.Error())
			case err == nil && !d.Empty():
				n.log.Info("notice sent", "submissions", d.Submissions(), "forms", len(d.Forms), "quarantined", d.Quarantined)
			}
		}
	}
}

// Tick counts what arrived since the last notice, sends one digest when
// there is anything to tell, and marks what it counted, all in one
// transaction: the marks commit only after the server accepted the message,
// and a second app replica ticking at the same time waits on the row locks
// and then finds nothing left to count.
func (n *Notifier) Tick(ctx context.Context) (Digest, error) {
	var d Digest
	err := pgx.BeginFunc(ctx, n.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH marked AS (
			  UPDATE submissions SET notified = true WHERE NOT notified RETURNING form_id
			)
			SELECT form_id, count(*) FROM marked GROUP BY form_id`)
		if err != nil {
			return fmt.Errorf("count new submissions: %w", err)
		}
		for rows.Next() {
			var f FormCount
			if err := rows.Scan(&f.FormID, &f.Count); err != nil {
				rows.Close()
				return err
			}
			f.Title = n.titleOf(f.FormID)
			d.Forms = append(d.Forms, f)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("count new submissions: %w", err)
		}
		if err := tx.QueryRow(ctx, `
			WITH marked AS (UPDATE quarantine SET notified = true WHERE NOT notified RETURNING 1)
			SELECT count(*) FROM marked`).Scan(&d.Quarantined); err != nil {
			return fmt.Errorf("count new quarantined rows: %w", err)
		}
		if d.Empty() {
			return nil
		}
		sort.Slice(d.Forms, func(i, j int) bool {
			if d.Forms[i].Count != d.Forms[j].Count {
				return d.Forms[i].Count > d.Forms[j].Count
			}
			return d.Forms[i].Title < d.Forms[j].Title
		})
		return n.cfg.Send(ctx, d.Message(), n.now())
	})
	if err != nil {
		return Digest{}, err
	}
	return d, nil
}
