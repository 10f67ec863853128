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

var errNothingToConsume = errors.New("no live result")

// consume returns a live result's document, opened with open, and consumes
// it, in one transaction that leaves a tombstone in its place.
//
// Without a date of birth, the DELETE ... RETURNING reads and removes the
// row in one statement, so two requests can never both get it. With one,
// the attempt is counted before the document is tried: the UPDATE ...
// RETURNING takes the row lock, adds the failure that a wrong answer will
// keep, and hands out the sealed bytes; the right answer then deletes the
// row, a wrong one commits the count, and the one that reaches
// results.MaxWrongBirthDates deletes the row. So no answer is ever tried
// without being counted, however many arrive at once. locked reports that
// this answer used the link up.
func (rs *ResultStore) consume(ctx context.Context, hash []byte, withBirthDate bool,
	open func(sealed []byte) (results.Document, error)) (state linkState, doc results.Document, locked bool, err error) {
	wrong := false
	err = pg.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
		var sealed []byte
		failures := 0
		var err error
		if withBirthDate {
			err = tx.QueryRow(ctx, `UPDATE results SET failures = failures + 1 WHERE token_hash = $1 AND expires_at > $2
RETURNING sealed, failures`, hash, rs.now()).Scan(&sealed, &failures)
		} else {
			err = tx.QueryRow(ctx, `DELETE FROM results WHERE token_hash = $1 AND expires_at > $2 RETURNING sealed`, hash, rs.now()).Scan(&sealed)
		}
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
		var openErr error
		doc, openErr = open(sealed)
		reason := "downloaded"
		switch {
		case openErr == nil:
			state = linkLive
		case withBirthDate && failures < results.MaxWrongBirthDates:
			wrong = true
			return nil // commit the counted failure
		case withBirthDate:
			wrong, locked, reason = true, true, "locked"
		default:
			return openErr // altered in the database: roll back, keep it
		}
		if withBirthDate {
			if _, err := tx.Exec(ctx, `DELETE FROM results WHERE token_hash = $1`, hash); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO result_tombstones (token_hash, reason) VALUES ($1, $2)`, hash, reason)
		return err
	})
	switch {
	case errors.Is(err, errNothingToConsume):
		return state, results.Document{}, false, nil
	case err != nil:
		return linkUnknown, results.Document{}, false, fmt.Errorf("consume result: %w", err)
	case wrong:
		return linkLive, results.Document{}, locked, errWrongBirthDate
	}
	return state, doc, false, nil
}
