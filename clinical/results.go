package clinical

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/results"
)

// Result states, as staff see them on the submission page.
const (
	ResultPublished  = "published"  // sealed here, waiting for transfer
	ResultDelivered  = "delivered"  // intake holds it; the link works
	ResultDownloaded = "downloaded" // the patient confirmed and got it
	ResultLocked     = "locked"     // used up by five wrong dates of birth
	ResultExpired    = "expired"
	ResultWithdrawn  = "withdrawn"
)

// Results is the clinical store of one-time results.
type Results struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

// NewResults binds the store.
func NewResults(pool *pgxpool.Pool, now func() time.Time) *Results {
	return &Results{pool: pool, now: now}
}

// Result is one published result as staff see it. The token is not here:
// it exists only in the link shown once.
type Result struct {
	ID                int64
	SubmissionID      int64
	Title             string
	ContentType       string
	Size              int64
	BirthDateRequired bool
	PublishedBy       string
	PublishedAt       time.Time
	ExpiresAt         time.Time
	State             string
	StateAt           time.Time
}

// Withdrawable reports whether a clinician may still withdraw the link.
func (r *Result) Withdrawable() bool {
	return r.State == ResultPublished || r.State == ResultDelivered
}

// Publication is what a clinician asks to publish.
type Publication struct {
	SubmissionID     int64
	Title            string
	Data             []byte
	Expires          time.Duration // 0: results.DefaultExpiry
	RequireBirthDate bool
	// BirthDate is the submission's date of birth, normalised; needed only
	// with RequireBirthDate.
	BirthDate string
}

// FieldError is bad input to a publication, naming the field (the CLI
// flag or form field) it is about.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// checkTitle returns the trimmed title, or why it is not acceptable.
func checkTitle(title string) (string, string) {
	title = strings.TrimSpace(title)
	switch {
	case title == "":
		return "", "give the result a title"
	case utf8.RuneCountInString(title) > results.MaxTitleLen:
		return "", fmt.Sprintf("at most %d characters", results.MaxTitleLen)
	case strings.IndexFunc(title, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }) >= 0:
		return "", "must not contain control or format characters"
	}
	return title, ""
}

// Validate checks a publication and returns the detected content type, or
// a *FieldError naming the field (file, title, expires, birth-date).
func (p *Publication) Validate() (string, error) {
	title, msg := checkTitle(p.Title)
	if msg != "" {
		return "", &FieldError{"title", msg}
	}
	p.Title = title
	if len(p.Data) == 0 {
		return "", &FieldError{"file", "the file is empty"}
	}
	if len(p.Data) > results.MaxSize {
		return "", &FieldError{"file", fmt.Sprintf("the file is larger than %d MiB", results.MaxSize>>20)}
	}
	ct := results.DetectType(p.Data)
	if ct == "" {
		return "", &FieldError{"file", "the file type is not allowed (allowed: PDF, PNG, JPEG, plain text)"}
	}
	if p.Expires == 0 {
		p.Expires = results.DefaultExpiry
	}
	if p.Expires < time.Hour || p.Expires > results.MaxExpiry {
		return "", &FieldError{"expires", fmt.Sprintf("must be between 1h and %s", results.MaxExpiry)}
	}
	if p.RequireBirthDate && p.BirthDate == "" {
		return "", &FieldError{"require-birth-date", "the submission has no date of birth to ask for"}
	}
	return ct, nil
}

// Publish seals a result under a fresh token and stores it for transfer to
// carry to intake, with its audit entry (result.publish) in the same
// transaction. It returns the token, which the caller shows once and which
// is stored nowhere.
func (rs *Results) Publish(ctx context.Context, p Publication, actor string, audit *Audit) (results.Token, *Result, error) {
	ct, err := p.Validate()
	if err != nil {
		return results.Token{}, nil, err
	}
	birthDate := ""
	if p.RequireBirthDate {
		birthDate = p.BirthDate
	}
	tok := results.NewToken()
	now := rs.now().UTC().Truncate(time.Microsecond)
	r := &Result{
		SubmissionID: p.SubmissionID, Title: p.Title, ContentType: ct, Size: int64(len(p.Data)),
		BirthDateRequired: p.RequireBirthDate, PublishedBy: actor, PublishedAt: now,
		ExpiresAt: now.Add(p.Expires), State: ResultPublished, StateAt: now,
	}
	sealedTitle := tok.SealTitle(p.Title)
	sealed := tok.SealDocument(results.Document{ContentType: ct, Data: p.Data}, birthDate)
	err = audit.InTx(ctx, func(tx *AuditTx) error {
		err := tx.QueryRow(ctx, `INSERT INTO results (submission_id, token_hash, title, content_type, sealed_title, sealed,
  size, birth_date_required, published_by, published_at, expires_at, state, state_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'published', $10) RETURNING id`,
			r.SubmissionID, tok.Hash(), r.Title, ct, sealedTitle, sealed, r.Size, r.BirthDateRequired,
			actor, now, r.ExpiresAt).Scan(&r.ID)
		if err != nil {
			return err
		}
		_, err = tx.Append(ctx, actor, "result.publish", fmt.Sprintf("submission:%d", r.SubmissionID), map[string]any{
			"result": r.ID, "expires": p.Expires.String(), "birth_date_required": p.RequireBirthDate, "size": r.Size})
		return err
	})
	if err != nil {
		return results.Token{}, nil, fmt.Errorf("publish result: %w", err)
	}
	return tok, r, nil
}

const resultColumns = `id, submission_id, title, content_type, size, birth_date_required, published_by, published_at,
  expires_at, state, state_at`

func scanResult(row pgx.CollectableRow) (*Result, error) {
	var r Result
	err := row.Scan(&r.ID, &r.SubmissionID, &r.Title, &r.ContentType, &r.Size, &r.BirthDateRequired, &r.PublishedBy,
		&r.PublishedAt, &r.ExpiresAt, &r.State, &r.StateAt)
	return &r, err
}

// ForSubmission lists a submission's results, newest first.
func (rs *Results) ForSubmission(ctx context.Context, submissionID int64) ([]*Result, error) {
	rows, err := rs.pool.Query(ctx, `SELECT `+resultColumns+` FROM results WHERE submission_id = $1 ORDER BY id DESC`, submissionID)
	if err != nil {
		return nil, fmt.Errorf("list results: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanResult)
	if err != nil {
		return nil, fmt.Errorf("list results: %w", err)
	}
	return list, nil
}

// Withdraw ends an unused link: a published result never reaches intake,
// a delivered one is removed from intake by transfer's next pass (which
// leaves a tombstone, so the link answers 410). It is a conflict when the
// result is already downloaded, expired or withdrawn. The audit entry
// (result.withdraw) commits with the change.
func (rs *Results) Withdraw(ctx context.Context, submissionID, resultID int64, actor string, audit *Audit) error {
	err := audit.InTx(ctx, func(tx *AuditTx) error {
		// A trigger (migration 000081) also marks it in_intake: intake may
		// hold it even while it is still "published" here (a carry that
		// crashed between its two steps), so transfer's next pass removes it
		// there and leaves a tombstone either way.
		tag, err := tx.Exec(ctx, `UPDATE results SET state = 'withdrawn', state_at = $3, sealed = NULL
WHERE id = $1 AND submission_id = $2 AND state IN ('published', 'delivered')`, resultID, submissionID, rs.now())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM results WHERE id = $1 AND submission_id = $2)`,
				resultID, submissionID).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return errNotFound
			}
			return errorf(CodeConflict, "This link can no longer be withdrawn: it was downloaded, has expired or was withdrawn already.")
		}
		// The UPDATE holds the row lock: appending now cannot deadlock.
		_, err = tx.Append(ctx, actor, "result.withdraw", fmt.Sprintf("submission:%d", submissionID), map[string]any{"result": resultID})
		return err
	})
	if err != nil && codeOf(err) == 0 {
		return fmt.Errorf("withdraw result %d: %w", resultID, err)
	}
	return err
}

// BirthDateDefinition is the item.definition that marks a form's date of
// birth question (FHIR's Patient.birthDate), the answer a result's second
// factor asks for.
const BirthDateDefinition = "http://hl7.org/fhir/StructureDefinition/Patient#Patient.birthDate"

// BirthDateOf finds the patient's date of birth among a submission's
// answers, normalised; "" when the form has no such question or it was not
// answered.
func BirthDateOf(q *forms.Questionnaire, answers forms.Answers) string {
	if q == nil {
		return ""
	}
	for _, it := range q.Questions() {
		if it.Type != forms.TypeDate || !isBirthDateItem(it) {
			continue
		}
		for _, v := range answers[it.LinkID] {
			if v.ValueDate != nil {
				if d, ok := results.NormaliseBirthDate(*v.ValueDate); ok {
					return d
				}
			}
		}
	}
	return ""
}

// errNoSuchReceipt is an unknown receipt given to `clinical results publish`.
var errNoSuchReceipt = errors.New("no submission has that receipt")

// isBirthDateItem tells the date of birth question by its item.definition,
// never by its linkId.
func isBirthDateItem(it *forms.Item) bool { return it.Definition == BirthDateDefinition }

// SubmissionForResult is what publishing needs of a submission.
type SubmissionForResult struct {
	ID        int64
	IntakeID  string
	BirthDate string // normalised; "" when the submission has none
}

// SubmissionByReceipt finds the submission a result is for by the receipt
// the patient holds.
func (rs *Results) SubmissionByReceipt(ctx context.Context, reg *forms.Registry, receipt string) (*SubmissionForResult, error) {
	r, ok := NormaliseReceipt(receipt)
	if !ok {
		return nil, errNoSuchReceipt
	}
	var s SubmissionForResult
	var formID string
	var answers forms.Answers
	err := rs.pool.QueryRow(ctx, `SELECT id, intake_id::text, form_id, answers FROM submissions WHERE receipt = $1`, r).
		Scan(&s.ID, &s.IntakeID, &formID, &answers)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoSuchReceipt
	}
	if err != nil {
		return nil, fmt.Errorf("find submission: %w", err)
	}
	if q, ok := reg.Get(formID); ok {
		s.BirthDate = BirthDateOf(q, answers)
	}
	return &s, nil
}

// resultStateLabel words a result state for staff.
func resultStateLabel(state string) string {
	switch state {
	case ResultPublished:
		return "Published, waiting for transfer"
	case ResultDelivered:
		return "Delivered to intake: the link works"
	case ResultDownloaded:
		return "Downloaded"
	case ResultLocked:
		return "Used up by wrong dates of birth"
	case ResultExpired:
		return "Expired"
	case ResultWithdrawn:
		return "Withdrawn"
	}
	return state
}
