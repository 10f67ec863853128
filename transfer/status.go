package transfer

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Status is what `transfer status` prints: the queue as ops need to see it.
// It holds counts and times only, never content.
type Status struct {
	// Pending counts rows in intake awaiting a move, those under an unknown
	// key included.
	Pending              int64 `json:"pending"`
	OldestPendingSeconds int64 `json:"oldest_pending_seconds"`
	// LastSuccession is the highest succession number delivered to clinical.
	LastSuccession int64 `json:"last_succession"`
	// Quarantined counts the rows held in clinical's quarantine now.
	Quarantined int64 `json:"quarantined"`
	// UnknownKey counts pending rows under a key id not in TRANSFER_KEYS; nil
	// when TRANSFER_KEYS is not set. A rise here is how a swapped recipient
	// key on a compromised intake host gets noticed.
	UnknownKey *int64 `json:"unknown_key"`
	// ExpiredTotal counts rows ever expired from intake unmoved, from the
	// operations log.
	ExpiredTotal int64 `json:"expired_total"`
	// QuarantineExpiredTotal counts quarantined rows ever deleted after
	// TRANSFER_QUARANTINE_RETENTION.
	QuarantineExpiredTotal int64 `json:"quarantine_expired_total"`
	// LastPassAt is when the last pass that completed without error finished
	// (a pass that changed nothing is seen through the heartbeat, written at
	// most once a minute); nil before the first.
	LastPassAt *time.Time `json:"last_pass_at"`
	// PendingByKey counts pending rows per key id, for retiring old keys.
	PendingByKey map[string]int64 `json:"pending_by_key"`
}

// ReadStatus reads the queue state from both databases; it needs no key.
// keyIDs is nil when the keyring is unknown.
func ReadStatus(ctx context.Context, intake, clinical *pgxpool.Pool, keyIDs []string) (*Status, error) {
	s := &Status{PendingByKey: map[string]int64{}}
	rows, err := intake.Query(ctx, `SELECT key_id, count(*), coalesce(extract(epoch FROM now() - min(received_at))::bigint, 0)
FROM submissions GROUP BY key_id`)
	if err != nil {
		return nil, fmt.Errorf("intake database: read queue: %w", err)
	}
	known := map[string]bool{}
	for _, id := range keyIDs {
		known[id] = true
	}
	var unknown int64
	for rows.Next() {
		var id string
		var n, oldest int64
		if err := rows.Scan(&id, &n, &oldest); err != nil {
			return nil, fmt.Errorf("intake database: read queue: %w", err)
		}
		s.PendingByKey[id] = n
		s.Pending += n
		s.OldestPendingSeconds = max(s.OldestPendingSeconds, oldest)
		if !known[id] {
			unknown += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("intake database: read queue: %w", err)
	}
	if keyIDs != nil {
		s.UnknownKey = &unknown
	}
	err = clinical.QueryRow(ctx, `SELECT
  (SELECT coalesce(max(succession), 0) FROM submissions),
  (SELECT count(*) FROM quarantine),
  (SELECT coalesce(sum(expired), 0) FROM transfer_passes WHERE expired > 0 OR quarantine_expired > 0),
  (SELECT coalesce(sum(quarantine_expired), 0) FROM transfer_passes WHERE expired > 0 OR quarantine_expired > 0),
  greatest((SELECT max(finished_at) FROM transfer_passes WHERE outcome = 'ok'),
           (SELECT last_pass_at FROM transfer_heartbeat))`).Scan(
		&s.LastSuccession, &s.Quarantined, &s.ExpiredTotal, &s.QuarantineExpiredTotal, &s.LastPassAt)
	if err != nil {
		return nil, fmt.Errorf("clinical database: read state: %w", err)
	}
	return s, nil
}
