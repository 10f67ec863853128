package intake

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/results"
)

// ResultStore reads and consumes one-time results through intake's login,
// which holds airlock_intake_results for this (and airlock_intake_writer for
// submissions). It finds a result only by the hash of a token a patient
// presents; it never adds or changes one.
type ResultStore struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// Results is the result store over the same pool as the submissions.
func (s *Store) Results() *ResultStore { return &ResultStore{pool: s.pool, now: time.Now} }

// linkState is what a token's hash names.
type linkState int

const (
	linkUnknown linkState = iota // never issued (or forgotten): 404
	linkLive                     // a result waits: 200
	linkGone                     // consumed, used up, expired or withdrawn: 410
)

// storedResult is a live result's row, without the document.
type storedResult struct {
	sealedTitle       []byte
	size              int64
	birthDateRequired bool
}

// lookup finds what a token hash names, in one statement whether or not it
// exists.
func (rs *ResultStore) lookup(ctx context.Context, hash []byte) (linkState, *storedResult, error) {
	var r storedResult
	var live, expired, tomb bool
	err := rs.pool.QueryRow(ctx, `SELECT r.token_hash IS NOT NULL, coalesce(r.expires_at <= $2, false), t.token_hash IS NOT NULL,
  coalesce(r.sealed_title, ''::bytea), coalesce(r.size, 0), coalesce(r.birth_date_required, false)
FROM (SELECT $1::bytea AS h) AS q
LEFT JOIN results r ON r.token_hash = q.h LEFT JOIN result_tombstones t ON t.token_hash = q.h`, hash, rs.now()).
		Scan(&live, &expired, &tomb, &r.sealedTitle, &r.size, &r.birthDateRequired)
	if err != nil {
		return linkUnknown, nil, fmt.Errorf("look up result: %w", err)
	}
	switch {
	case live && !expired:
		return linkLive, &r, nil
	case live || tomb:
		return linkGone, nil, nil
	}
	return linkUnknown, nil, nil
}

// errWrongBirthDate is a document that did not open with the date of
// birth given; consume has counted it.
var errWrongBirthDate = errors.New("wrong date of birth")

// consume deletes a live result and returns its document, opened with
// open, in one transaction: the DELETE ... RETURNING reads and removes the
// row in one statement (so two requests cannot both get it), and a
// tombstone takes its place. When the document does not open (a wrong date
// of birth) the deletion is rolled back and the failure counted; the
// failure that reaches results.MaxWrongBirthDates consumes the link.
// state is linkLive only when the document is returned.
func (rs *ResultStore) consume(ctx context.Context, hash []byte, open func(sealed []byte) (results.Document, error)) (linkState, results.Document, bool, error) {
	var doc results.Document
	state := linkUnknown
	var openErr error
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		var sealed []byte
		err := tx.QueryRow(ctx, `DELETE FROM results WHERE token_hash = $1 AND expires_at > $2 RETURNING sealed`, hash, rs.now()).Scan(&sealed)
		if errors.Is(err, pgx.ErrNoRows) {
			// Gone, expired or never issued: which, from the same kind of
			// read a live one costs.
			var gone bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM result_tombstones WHERE token_hash = $1)
  OR EXISTS (SELECT 1 FROM results WHERE token_hash = $1)`, hash).Scan(&gone); err != nil {
				return err
			}
			if gone {
				state = linkGone
			}
			results.DummyOpen(64 << 10)
			return errNothingToConsume
		}
		if err != nil {
			return err
		}
		doc, openErr = open(sealed)
		if openErr != nil {
			return openErr // roll the deletion back
		}
		state = linkLive
		_, err = tx.Exec(ctx, `INSERT INTO result_tombstones (token_hash, reason) VALUES ($1, 'downloaded')`, hash)
		return err
	})
	switch {
	case errors.Is(err, errNothingToConsume):
		return state, doc, false, nil
	case openErr != nil && errors.Is(err, openErr):
		locked, err := rs.countFailure(ctx, hash)
		if err != nil {
			return linkUnknown, doc, false, err
		}
		return linkLive, doc, locked, errWrongBirthDate
	case err != nil:
		return linkUnknown, doc, false, fmt.Errorf("consume result: %w", err)
	}
	return state, doc, false, nil
}

var errNothingToConsume = errors.New("no live result")

// countFailure adds a wrong answer to a result's count under its row lock;
// the one that reaches the limit deletes the result, leaving a 'locked'
// tombstone. It reports whether the link is now used up.
func (rs *ResultStore) countFailure(ctx context.Context, hash []byte) (bool, error) {
	locked := false
	err := pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		var failures int
		err := tx.QueryRow(ctx, `UPDATE results SET failures = failures + 1 WHERE token_hash = $1 RETURNING failures`, hash).Scan(&failures)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // consumed or expired meanwhile
		}
		if err != nil || failures < results.MaxWrongBirthDates {
			return err
		}
		locked = true
		if _, err := tx.Exec(ctx, `DELETE FROM results WHERE token_hash = $1`, hash); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO result_tombstones (token_hash, reason) VALUES ($1, 'locked') ON CONFLICT (token_hash) DO NOTHING`, hash)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("count wrong date of birth: %w", err)
	}
	return locked, nil
}
