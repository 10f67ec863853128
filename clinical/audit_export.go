package clinical

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/airlockhq/airlock/shared/pg"
)

// AuditRecord is one audit entry as `clinical audit export` writes it, one
// JSON object a line: the stored columns and nothing else (ids, actions and
// the detail's ids, counts and filter names; never patient content). MAC is
// the entry's chain MAC in hex, so a copy held by a log system names heads
// that `clinical audit verify --head ID:MAC` can check the database against.
type AuditRecord struct {
	ID     int64           `json:"id"`
	Seq    *int64          `json:"seq"` // null for entries written before migration 000012
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Detail json.RawMessage `json:"detail"`
	MAC    string          `json:"mac"`
}

// ExportAudit writes the audit entries recorded at or after since (every
// entry when since is zero) to w as NDJSON, oldest first, and returns how
// many it wrote. It first appends an `audit.export` entry on behalf of
// actor, fail closed: no entry, no export. The export ends with that entry
// (unless since is later than it), so what a log system holds always shows
// the export that delivered it. Rows stream from the database to w one at a
// time: memory does not grow with the log.
func (a *Audit) ExportAudit(ctx context.Context, w io.Writer, actor string, since time.Time) (int64, error) {
	detail := map[string]any{"format": "ndjson"}
	if !since.IsZero() {
		detail["since"] = since.UTC().Format(time.RFC3339Nano)
	}
	own, err := a.Append(ctx, actor, "audit.export", "", detail)
	if err != nil {
		return 0, err
	}
	// Up to the export's own entry: what later appends add belongs to the
	// next export.
	tx, err := pg.BeginLongRead(ctx, a.pool) // the rows stream to a consumer as slow as it is
	if err != nil {
		return 0, fmt.Errorf("read audit log: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT id, seq, at, actor, action, target, detail, mac
FROM audit_log WHERE id <= $1 AND at >= $2 ORDER BY id`, own.ID, since)
	if err != nil {
		return 0, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	var n int64
	for rows.Next() {
		var r AuditRecord
		var detailText string
		var mac []byte
		if err := rows.Scan(&r.ID, &r.Seq, &r.At, &r.Actor, &r.Action, &r.Target, &detailText, &mac); err != nil {
			return n, fmt.Errorf("read audit entry: %w", err)
		}
		r.At = r.At.UTC()
		r.MAC = hex.EncodeToString(mac)
		// The app stores a JSON object; a detail edited into something
		// else is exported as the text it is (verify reports the edit).
		if json.Valid([]byte(detailText)) {
			r.Detail = json.RawMessage(detailText)
		} else {
			r.Detail, _ = json.Marshal(detailText)
		}
		if err := enc.Encode(&r); err != nil {
			return n, fmt.Errorf("write audit export: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read audit log: %w", err)
	}
	return n, nil
}
