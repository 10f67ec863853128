package clinical

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/shared/forms"
)

// Corrections (docs/clinical.md, "Corrections"). transfer links a correction
// to the submission it names only when the submitter's correction code
// matched (corrects_id, correction_verified); a claim that did not match
// keeps only the receipt it named (corrects_receipt) and is flagged "not
// verified". Nothing is hidden until a clinician accepts a linked
// correction: then the current version of the original is superseded by it,
// and its status and notes are carried over, in one transaction with the
// audit entry. The code hashes (correction_codes) are not readable by this
// app's login at all.

// LinkedSubmission is a submission on the other end of a correction link.
type LinkedSubmission struct {
	Ref         string // intake id, the URL id
	Receipt     string
	SubmittedAt time.Time
	Accepted    bool // a correction a clinician accepted
	Superseded  bool
}

// AnswerChange is one question whose answers differ between an original
// and its correction.
type AnswerChange struct {
	Label         string
	Before, After string
}

// CorrectionInfo is what the detail page shows about corrections.
type CorrectionInfo struct {
	// As a correction: the receipt it named ("" when it is not one), whether
	// transfer verified its code, and the linked original (nil when not
	// linked, or when the original was erased after linking).
	Claims     string
	Verified   bool
	Original   *LinkedSubmission
	Accepted   bool
	AcceptedAt time.Time
	AcceptedBy string
	Changes    []AnswerChange // the answers that differ from the original's
	CanAccept  bool           // linked, not accepted yet
	// As an original: the corrections linked to it, and the submissions that
	// named its receipt without its correction code.
	Corrections []LinkedSubmission
	Unverified  []LinkedSubmission

	originalAnswers forms.Answers
}

// Corrections reads what d is a correction of and what corrects d.
func (st *Submissions) Corrections(ctx context.Context, d *Detail) (*CorrectionInfo, error) {
	var ci CorrectionInfo
	var claims, origRef, origReceipt, acceptedBy *string
	var acceptedAt *time.Time
	var origSubmitted *time.Time
	var origAnswers []byte
	var origSuperseded *bool
	err := st.pool.QueryRow(ctx, `SELECT s.corrects_receipt, s.correction_verified, s.correction_accepted_at, a.email,
  o.intake_id::text, o.receipt, o.submitted_at, o.answers, o.superseded_by IS NOT NULL
FROM submissions s LEFT JOIN submissions o ON o.id = s.corrects_id LEFT JOIN staff a ON a.id = s.correction_accepted_by
WHERE s.id = $1`, d.ID).Scan(&claims, &ci.Verified, &acceptedAt, &acceptedBy,
		&origRef, &origReceipt, &origSubmitted, &origAnswers, &origSuperseded)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read correction of submission %d: %w", d.ID, err)
	}
	if claims != nil {
		ci.Claims = *claims
	}
	if acceptedAt != nil {
		ci.Accepted, ci.AcceptedAt = true, *acceptedAt
	}
	if acceptedBy != nil {
		ci.AcceptedBy = *acceptedBy
	}
	if origRef != nil {
		ci.Original = &LinkedSubmission{Ref: *origRef, Receipt: *origReceipt, SubmittedAt: *origSubmitted, Superseded: *origSuperseded}
		if err := json.Unmarshal(origAnswers, &ci.originalAnswers); err != nil {
			return nil, fmt.Errorf("decode answers of the original of submission %d: %w", d.ID, err)
		}
		ci.CanAccept = !ci.Accepted
	}
	rows, err := st.pool.Query(ctx, `SELECT intake_id::text, receipt, submitted_at, correction_accepted_at IS NOT NULL,
  superseded_by IS NOT NULL, corrects_id IS NOT NULL
FROM submissions WHERE corrects_id = $1 OR (corrects_receipt = $2 AND corrects_id IS NULL AND NOT correction_verified)
ORDER BY submitted_at, id`, d.ID, d.Receipt)
	if err != nil {
		return nil, fmt.Errorf("read corrections of submission %d: %w", d.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var l LinkedSubmission
		var linked bool
		if err := rows.Scan(&l.Ref, &l.Receipt, &l.SubmittedAt, &l.Accepted, &l.Superseded, &linked); err != nil {
			return nil, fmt.Errorf("read corrections of submission %d: %w", d.ID, err)
		}
		if linked {
			ci.Corrections = append(ci.Corrections, l)
		} else {
			ci.Unverified = append(ci.Unverified, l)
		}
	}
	return &ci, rows.Err()
}

// answerChanges lists the questions whose answers differ between before and
// after, in the form's order (then any linkId the form does not know). A
// question inside a repeating group is compared instance by instance and
// named with its instance ("Name (med[2])").
func answerChanges(q *forms.Questionnaire, before, after forms.Answers) []AnswerChange {
	var ids []string
	seen := map[string]bool{}
	items := map[string]*forms.Item{}
	fields := func(a forms.Answers) map[string][]forms.Value {
		out := map[string][]forms.Value{}
		if q == nil {
			return a
		}
		q.WalkAnswers(a, func(x forms.Answered) {
			out[x.Field] = x.Values
			items[x.Field] = x.Item
			if !seen[x.Field] {
				seen[x.Field] = true
				ids = append(ids, x.Field)
			}
		})
		return out
	}
	b4, af := fields(before), fields(after)
	var rest []string
	for _, a := range []forms.Answers{before, after} {
		for id := range a {
			if !seen[id] && (q == nil || q.Item(id) == nil) {
				seen[id] = true
				rest = append(rest, id)
			}
		}
	}
	sort.Strings(rest)
	var out []AnswerChange
	for _, id := range append(ids, rest...) {
		b, a := b4[id], af[id]
		if q != nil && items[id] == nil {
			b, a = before[id], after[id]
		}
		if len(b) == 0 && len(a) == 0 {
			continue
		}
		bj, _ := json.Marshal(b)
		aj, _ := json.Marshal(a)
		if bytes.Equal(bj, aj) {
			continue
		}
		label := id
		if it := items[id]; it != nil && it.Text != "" {
			label = it.Text
			if id != it.LinkID {
				label += " (" + strings.TrimSuffix(strings.TrimSuffix(id, it.LinkID), "/") + ")"
			}
		}
		out = append(out, AnswerChange{Label: label, Before: valuesText(b), After: valuesText(a)})
	}
	return out
}

func valuesText(vs []forms.Value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = answerText(v)
	}
	return strings.Join(parts, "; ")
}

// Accepted is what accepting a correction did, for its audit entry.
type Accepted struct {
	Superseded int64  // id of the version the correction replaced
	Original   int64  // id of the submission the correction names
	Status     string // the status carried over
	Notes      int    // notes carried over
}

// AcceptCorrection accepts the correction with id correctionID on behalf of
// staffID, in tx (which also takes the audit entry): the current version of
// the submission it corrects (the original, or the newest correction of it
// already accepted) is superseded by it, and that version's review status
// and notes are carried over to it. A correction sealed before the current
// version is refused: a correction held back and delivered late must never
// replace a newer one.
func (st *Submissions) AcceptCorrection(ctx context.Context, tx pgx.Tx, correctionID, staffID int64) (*Accepted, error) {
	var origID *int64
	var accepted bool
	var submitted time.Time
	err := tx.QueryRow(ctx, `SELECT corrects_id, correction_accepted_at IS NOT NULL, submitted_at FROM submissions
WHERE id = $1 FOR UPDATE`, correctionID).Scan(&origID, &accepted, &submitted)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("accept correction %d: %w", correctionID, err)
	}
	switch {
	case accepted:
		return nil, errorf(CodeConflict, "This correction was accepted already.")
	case origID == nil:
		return nil, errorf(CodeConflict, "This submission is not a verified correction of a submission held here, so there is nothing to accept.")
	}
	// Every acceptance for this original waits here for the one before it.
	if _, err := tx.Exec(ctx, `SELECT 1 FROM submissions WHERE id = $1 FOR UPDATE`, *origID); err != nil {
		return nil, fmt.Errorf("accept correction %d: %w", correctionID, err)
	}
	var headID int64
	err = tx.QueryRow(ctx, `WITH RECURSIVE chain (id, superseded_by, depth) AS (
  SELECT id, superseded_by, 1 FROM submissions WHERE id = $1
  UNION ALL
  SELECT s.id, s.superseded_by, c.depth + 1 FROM submissions s JOIN chain c ON s.id = c.superseded_by WHERE c.depth < 1000
)
SELECT id FROM chain WHERE superseded_by IS NULL LIMIT 1`, *origID).Scan(&headID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf(CodeConflict, "The versions of this submission form no chain that ends. Nothing was changed.")
	}
	if err != nil {
		return nil, fmt.Errorf("accept correction %d: %w", correctionID, err)
	}
	var headSuperseded bool
	var headSubmitted time.Time
	var status string
	err = tx.QueryRow(ctx, `SELECT superseded_by IS NOT NULL, submitted_at, status FROM submissions WHERE id = $1 FOR UPDATE`,
		headID).Scan(&headSuperseded, &headSubmitted, &status)
	if err != nil {
		return nil, fmt.Errorf("accept correction %d: %w", correctionID, err)
	}
	switch {
	case headSuperseded || headID == correctionID:
		return nil, errorf(CodeConflict, "Someone changed this submission meanwhile. Reload it and try again.")
	case !submitted.After(headSubmitted):
		return nil, errorf(CodeConflict, "A newer version of this submission was accepted already: this correction was sent before it and cannot replace it.")
	}
	now := st.now()
	if _, err := tx.Exec(ctx, `UPDATE submissions SET superseded_by = $2, superseded_at = $3 WHERE id = $1`,
		headID, correctionID, now); err != nil {
		return nil, fmt.Errorf("accept correction %d: %w", correctionID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE submissions SET correction_accepted_at = $2, correction_accepted_by = $3,
  status = $4, status_changed_at = $2 WHERE id = $1`, correctionID, now, staffID, status); err != nil {
		return nil, fmt.Errorf("accept correction %d: %w", correctionID, err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO submission_notes (submission_id, staff_id, at, body)
SELECT $2, staff_id, at, body FROM submission_notes WHERE submission_id = $1 ORDER BY id`, headID, correctionID)
	if err != nil {
		return nil, fmt.Errorf("carry notes to correction %d: %w", correctionID, err)
	}
	return &Accepted{Superseded: headID, Original: *origID, Status: status, Notes: int(tag.RowsAffected())}, nil
}

// correctionsOf fills the detail page's correction section.
func (s *Server) correctionsOf(ctx context.Context, d *Detail) (*CorrectionInfo, error) {
	ci, err := s.subs.Corrections(ctx, d)
	if err != nil {
		return nil, err
	}
	if ci.Original != nil {
		q, _ := s.forms.Get(d.FormID)
		ci.Changes = answerChanges(q, ci.originalAnswers, d.Answers)
	}
	return ci, nil
}

// handleAcceptCorrection accepts a verified correction (clinicians only):
// the supersession, the carried status and notes, and the audit entry
// commit together or not at all.
func (s *Server) handleAcceptCorrection(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	d, err := s.subs.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	err = s.audit.InTx(ctx, func(tx *AuditTx) error {
		res, err := s.subs.AcceptCorrection(ctx, tx.Tx, d.ID, sess.Staff.ID)
		if err != nil {
			return err
		}
		_, err = tx.Append(ctx, sess.Staff.Actor(), "correction.accept", fmt.Sprintf("submission:%d", d.ID), map[string]any{
			"supersedes": fmt.Sprintf("submission:%d", res.Superseded), "corrects": fmt.Sprintf("submission:%d", res.Original),
			"status": res.Status, "notes_carried": res.Notes})
		return err
	})
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/submissions/"+d.IntakeID+"?done=correction+accepted")
}
