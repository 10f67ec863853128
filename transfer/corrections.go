package transfer

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/shared/seal"
)

// Corrections (docs/transfer.md, "Corrections"). Every submission intake
// seals carries the hash of a correction code that only the submitter was
// shown; a correction carries the receipt it names and the hash of the code
// its submitter presented. transfer keeps both hashes in clinical's
// correction_codes table (which the staff app cannot read) and links a
// correction to the submission it names only when
//   - that submission is in clinical, of the same form, and has a code hash,
//   - the presented hash equals it (compared in constant time), and
//   - the correction's sealed submission time is after the original's.
// Anything else is delivered as an ordinary submission whose claim stays
// unverified. Linking hides nothing: a clinician's acceptance in the staff
// app supersedes, never transfer.

// validCorrectionFields reports whether the payload's correction fields, when
// present, have the shape intake seals.
func validCorrectionFields(p *seal.Payload) bool {
	if p.CorrectionCodeHash != "" && !seal.ValidCodeHash(p.CorrectionCodeHash) {
		return false
	}
	return p.Corrects == nil || p.Corrects.Valid()
}

// hashBytes decodes a hash already checked by validCorrectionFields; nil for "".
func hashBytes(h string) []byte {
	if h == "" {
		return nil
	}
	b, err := hex.DecodeString(h)
	if err != nil {
		return nil
	}
	return b
}

// codeMatches compares a stored hash with a presented one in constant time;
// a missing hash on either side never matches.
func codeMatches(stored, presented []byte) bool {
	return len(stored) > 0 && len(presented) > 0 && subtle.ConstantTimeCompare(stored, presented) == 1
}

// linkCorrections stores the new rows' code hashes and links corrections
// among them, in succession order, both ways in time:
//   - a new correction to the submission it names, already in clinical or
//     new in this batch;
//   - a new submission to corrections of it delivered earlier (it waited,
//     e.g. under a key transfer did not hold yet), each checked the same way.
//
// It returns how many corrections it linked.
func linkCorrections(ctx context.Context, tx pgx.Tx, added []insertedRow) (int, error) {
	if len(added) == 0 {
		return 0, nil
	}
	var ids []int64
	var own, presented [][]byte
	for _, r := range added {
		var p []byte
		if r.corrects != nil {
			p = hashBytes(r.corrects.CodeHash)
		}
		if r.codeHash == "" && p == nil {
			continue
		}
		ids, own, presented = append(ids, r.id), append(own, hashBytes(r.codeHash)), append(presented, p)
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO correction_codes (submission_id, code_hash, corrects_code_hash)
SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])`, ids, own, presented); err != nil {
			return 0, fmt.Errorf("store correction code hashes: %w", err)
		}
	}
	linked := 0
	for _, r := range added {
		if r.corrects == nil {
			continue
		}
		// The original is locked against erasure until this commits.
		var origID int64
		var origSubmitted time.Time
		var origHash []byte
		err := tx.QueryRow(ctx, `SELECT o.id, o.submitted_at, c.code_hash
FROM submissions o LEFT JOIN correction_codes c ON c.submission_id = o.id
WHERE o.receipt = $1 AND o.form_id = $2 AND o.id <> $3 FOR KEY SHARE OF o`, r.corrects.Receipt, r.formID, r.id).Scan(&origID, &origSubmitted, &origHash)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // not (yet) in clinical, erased, or of another form
		}
		if err != nil {
			return linked, fmt.Errorf("find corrected submission: %w", err)
		}
		if !codeMatches(origHash, hashBytes(r.corrects.CodeHash)) || !r.submitted.After(origSubmitted) {
			continue
		}
		if err := link(ctx, tx, r.id, origID); err != nil {
			return linked, err
		}
		linked++
	}
	// Corrections delivered before the submission they name.
	receipts := make([]string, len(added))
	byReceipt := make(map[string]insertedRow, len(added))
	for i, r := range added {
		receipts[i] = r.receipt
		byReceipt[r.receipt] = r
	}
	rows, err := tx.Query(ctx, `SELECT s.id, s.corrects_receipt, s.form_id, s.submitted_at, c.corrects_code_hash
FROM submissions s JOIN correction_codes c ON c.submission_id = s.id
WHERE s.corrects_receipt = ANY($1::text[]) AND s.corrects_id IS NULL AND NOT s.correction_verified
  AND c.corrects_code_hash IS NOT NULL ORDER BY s.succession`, receipts)
	if err != nil {
		return linked, fmt.Errorf("find waiting corrections: %w", err)
	}
	type waiting struct {
		id        int64
		receipt   string
		formID    string
		submitted time.Time
		hash      []byte
	}
	var found []waiting
	for rows.Next() {
		var w waiting
		if err := rows.Scan(&w.id, &w.receipt, &w.formID, &w.submitted, &w.hash); err != nil {
			rows.Close()
			return linked, fmt.Errorf("find waiting corrections: %w", err)
		}
		found = append(found, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return linked, fmt.Errorf("find waiting corrections: %w", err)
	}
	for _, w := range found {
		o := byReceipt[w.receipt]
		if o.formID != w.formID || o.id == w.id || !codeMatches(hashBytes(o.codeHash), w.hash) || !w.submitted.After(o.submitted) {
			continue
		}
		if err := link(ctx, tx, w.id, o.id); err != nil {
			return linked, err
		}
		linked++
	}
	return linked, nil
}

// link records that correction corrects original (verified).
func link(ctx context.Context, tx pgx.Tx, correction, original int64) error {
	if _, err := tx.Exec(ctx, `UPDATE submissions SET corrects_id = $2, correction_verified = true WHERE id = $1`,
		correction, original); err != nil {
		return fmt.Errorf("link correction: %w", err)
	}
	return nil
}
