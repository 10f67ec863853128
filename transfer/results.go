package transfer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// One-time results (docs/results.md) travel the other way: clinical seals a
// document for a patient, transfer carries the sealed bytes into intake's
// results table, deletes them there when they expire or are withdrawn, and
// reports back what became of each. It never sees a token, a key or a
// plaintext: it reads neither the title nor the type in clear.

// resultsBatch bounds the results read from clinical at once: each may be
// up to 5 MiB.
const resultsBatch = 16

// observeBatch bounds the delivered results checked against intake at once.
const observeBatch = 500

// TombstoneRetention is how long intake remembers a consumed, expired or
// withdrawn link (so it answers 410, not 404); after it, the hash is
// forgotten.
const TombstoneRetention = 90 * 24 * time.Hour

// States a delivered result ends in when intake keeps no tombstone for it.
const (
	resultDownloaded = "downloaded"
	resultExpired    = "expired"
)

// passResults runs the results steps of a pass, each going on when another
// fails: carry published results in (expiring those that never made it),
// delete expired and withdrawn ones from intake, learn what became of the
// delivered ones, and forget old tombstones.
func (m *Mover) passResults(ctx context.Context, sum *Summary) error {
	var errs []error
	moved, expired, err := m.carryResults(ctx)
	sum.ResultsMoved, sum.ResultsExpired = moved, expired
	if err != nil {
		errs = append(errs, err)
	}
	n, err := m.expireResults(ctx)
	sum.ResultsExpired += n
	if err != nil {
		errs = append(errs, err)
	}
	// observeResults reads a result gone from intake without a tombstone as
	// downloaded, so it runs only once every withdrawal has its tombstone.
	if err := m.withdrawResults(ctx); err != nil {
		errs = append(errs, err)
	} else if err := m.observeResults(ctx); err != nil {
		errs = append(errs, err)
	}
	if _, err := m.Intake.Exec(ctx, `DELETE FROM result_tombstones WHERE at < $1`, m.Now().Add(-TombstoneRetention)); err != nil {
		errs = append(errs, fmt.Errorf("intake database: prune result tombstones: %w", err))
	}
	return errors.Join(errs...)
}

type publishedResult struct {
	id                  int64
	tokenHash           []byte
	sealedTitle, sealed []byte
	size                int64
	birthDateRequired   bool
	expiresAt           time.Time
}

// carryResults copies published results into intake. A result already
// consumed there (its tombstone exists: a pass crashed after delivering it
// and the patient was quick) is never put back. Published results past
// their expiry are expired in clinical instead.
func (m *Mover) carryResults(ctx context.Context) (moved, expired int, err error) {
	var after int64
	for ctx.Err() == nil {
		rows, err := m.Clinical.Query(ctx, `SELECT id, token_hash, sealed_title, sealed, size, birth_date_required, expires_at
FROM results WHERE state = 'published' AND sealed IS NOT NULL AND id > $1 ORDER BY id LIMIT $2`, after, resultsBatch)
		if err != nil {
			return moved, expired, fmt.Errorf("clinical database: read published results: %w", err)
		}
		batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (publishedResult, error) {
			var p publishedResult
			err := r.Scan(&p.id, &p.tokenHash, &p.sealedTitle, &p.sealed, &p.size, &p.birthDateRequired, &p.expiresAt)
			return p, err
		})
		if err != nil {
			return moved, expired, fmt.Errorf("clinical database: read published results: %w", err)
		}
		for _, p := range batch {
			after = p.id
			now := m.Now()
			if !p.expiresAt.After(now) {
				tag, err := m.Clinical.Exec(ctx, `UPDATE results SET state = 'expired', state_at = $2, sealed = NULL
WHERE id = $1 AND state = 'published'`, p.id, now)
				if err != nil {
					return moved, expired, fmt.Errorf("clinical database: expire result %d: %w", p.id, err)
				}
				expired += int(tag.RowsAffected())
				continue
			}
			if _, err := m.Intake.Exec(ctx, `INSERT INTO results (token_hash, sealed_title, sealed, size, birth_date_required, expires_at)
SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM result_tombstones WHERE token_hash = $1)
ON CONFLICT (token_hash) DO NOTHING`, p.tokenHash, p.sealedTitle, p.sealed, p.size, p.birthDateRequired, p.expiresAt); err != nil {
				return moved, expired, fmt.Errorf("intake database: deliver result %d: %w", p.id, err)
			}
			// Only now, with intake holding it, clinical drops its copy. A
			// withdrawal that came meanwhile keeps its state; in_intake
			// tells withdrawResults to remove it from intake again.
			tag, err := m.Clinical.Exec(ctx, `UPDATE results SET in_intake = true, sealed = NULL,
  state_at = CASE WHEN state = 'published' THEN $2 ELSE state_at END,
  state = CASE WHEN state = 'published' THEN 'delivered' ELSE state END
WHERE id = $1 AND state IN ('published', 'withdrawn')`, p.id, now)
			if err != nil {
				return moved, expired, fmt.Errorf("clinical database: mark result %d delivered: %w", p.id, err)
			}
			moved += int(tag.RowsAffected())
		}
		if len(batch) < resultsBatch {
			break
		}
	}
	if moved+expired > 0 {
		m.Log.Info("results carried to intake", "moved", moved, "expired_before_delivery", expired)
	}
	return moved, expired, ctx.Err()
}

// expireResults deletes results past their expiry from intake, leaving a
// tombstone for each so the link answers 410. observeResults tells clinical.
func (m *Mover) expireResults(ctx context.Context) (int, error) {
	total := 0
	for {
		tag, err := m.Intake.Exec(ctx, `WITH gone AS (
  DELETE FROM results WHERE token_hash IN (SELECT token_hash FROM results WHERE expires_at <= $1 LIMIT $2)
  RETURNING token_hash)
INSERT INTO result_tombstones (token_hash, reason) SELECT token_hash, 'expired' FROM gone
ON CONFLICT (token_hash) DO NOTHING`, m.Now(), expireChunk)
		if err != nil {
			return total, fmt.Errorf("intake database: expire results: %w", err)
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < expireChunk {
			break
		}
	}
	if total > 0 {
		m.Log.Info("expired results deleted from intake", "count", total)
	}
	return total, nil
}

// withdrawResults deletes from intake the results a clinician withdrew
// after delivery, leaving a tombstone. One the patient got first stays
// gone with its own tombstone; observeResults reports which. Clinical marks
// every withdrawn result in_intake, because a carry that crashed between
// its INSERT here and its UPDATE there may have left it in intake unrecorded:
// so every withdrawn hash gets its tombstone, whether or not intake held
// it. The link then answers 410, no later carry can put it back, and
// observeResults never reads its absence as a download.
func (m *Mover) withdrawResults(ctx context.Context) error {
	type withdrawn struct {
		id   int64
		hash []byte
	}
	var after int64
	for ctx.Err() == nil {
		rows, err := m.Clinical.Query(ctx, `SELECT id, token_hash FROM results WHERE state = 'withdrawn' AND in_intake AND id > $1
ORDER BY id LIMIT $2`, after, observeBatch)
		if err != nil {
			return fmt.Errorf("clinical database: read withdrawn results: %w", err)
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (withdrawn, error) {
			var w withdrawn
			return w, r.Scan(&w.id, &w.hash)
		})
		if err != nil {
			return fmt.Errorf("clinical database: read withdrawn results: %w", err)
		}
		if len(list) == 0 {
			return nil
		}
		hashes := make([][]byte, len(list))
		for i, w := range list {
			hashes[i] = w.hash
		}
		after = list[len(list)-1].id
		_, err = m.Intake.Exec(ctx, `WITH gone AS (DELETE FROM results WHERE token_hash = ANY($1))
INSERT INTO result_tombstones (token_hash, reason) SELECT h, 'withdrawn' FROM unnest($1::bytea[]) AS h
ON CONFLICT (token_hash) DO NOTHING`, hashes)
		if err != nil {
			return fmt.Errorf("intake database: withdraw results: %w", err)
		}
		if len(list) < observeBatch {
			return nil
		}
	}
	return ctx.Err()
}

// observeResults checks the results clinical believes intake holds. One
// that is gone from intake was downloaded, used up by wrong answers,
// expired or withdrawn, as its tombstone says; without a tombstone (pruned,
// or intake restored from an old backup), gone before its expiry counts as
// downloaded.
func (m *Mover) observeResults(ctx context.Context) error {
	var after int64
	for ctx.Err() == nil {
		rows, err := m.Clinical.Query(ctx, `SELECT id, token_hash, expires_at FROM results WHERE in_intake AND id > $1
ORDER BY id LIMIT $2`, after, observeBatch)
		if err != nil {
			return fmt.Errorf("clinical database: read delivered results: %w", err)
		}
		type held struct {
			id      int64
			hash    []byte
			expires time.Time
		}
		list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (held, error) {
			var h held
			return h, r.Scan(&h.id, &h.hash, &h.expires)
		})
		if err != nil {
			return fmt.Errorf("clinical database: read delivered results: %w", err)
		}
		if len(list) == 0 {
			return nil
		}
		after = list[len(list)-1].id
		hashes := make([][]byte, len(list))
		for i, h := range list {
			hashes[i] = h.hash
		}
		// For every hash: whether intake still holds it, and its tombstone.
		irows, err := m.Intake.Query(ctx, `SELECT h.n, r.token_hash IS NOT NULL, coalesce(t.reason, '')
FROM unnest($1::bytea[]) WITH ORDINALITY AS h(hash, n)
LEFT JOIN results r ON r.token_hash = h.hash LEFT JOIN result_tombstones t ON t.token_hash = h.hash`, hashes)
		if err != nil {
			return fmt.Errorf("intake database: check delivered results: %w", err)
		}
		type seen struct {
			n      int
			held   bool
			reason string
		}
		found, err := pgx.CollectRows(irows, func(r pgx.CollectableRow) (seen, error) {
			var s seen
			return s, r.Scan(&s.n, &s.held, &s.reason)
		})
		if err != nil {
			return fmt.Errorf("intake database: check delivered results: %w", err)
		}
		now := m.Now()
		for _, s := range found {
			if s.held {
				continue
			}
			h := list[s.n-1]
			state := s.reason
			if state == "" {
				state = resultDownloaded
				if !h.expires.After(now) {
					state = resultExpired
				}
			}
			// Downloaded and used up are facts that beat a withdrawal which
			// reached intake too late; expired and withdrawn only end a
			// result still delivered.
			if _, err := m.Clinical.Exec(ctx, `UPDATE results SET in_intake = false,
  state_at = CASE WHEN $2::text IN ('downloaded', 'locked') OR state = 'delivered' THEN $3 ELSE state_at END,
  state = CASE WHEN $2::text IN ('downloaded', 'locked') OR state = 'delivered' THEN $2::text ELSE state END
WHERE id = $1 AND in_intake`, h.id, state, now); err != nil {
				return fmt.Errorf("clinical database: record result %d %s: %w", h.id, state, err)
			}
		}
		if len(list) < observeBatch {
			return nil
		}
	}
	return ctx.Err()
}
