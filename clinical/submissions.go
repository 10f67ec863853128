package clinical

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/textsearch"
)

// Review statuses, in workflow order.
const (
	ReviewNew      = "new"
	ReviewInReview = "in_review"
	ReviewDone     = "done"
	ReviewArchived = "archived"
)

// ReviewStatuses lists the statuses in workflow order.
var ReviewStatuses = []string{ReviewNew, ReviewInReview, ReviewDone, ReviewArchived}

// reviewMoves is the review workflow: new → in review → done, archive from
// anywhere, and the way back for a mistake.
var reviewMoves = map[string][]string{
	ReviewNew:      {ReviewInReview, ReviewArchived},
	ReviewInReview: {ReviewDone, ReviewNew, ReviewArchived},
	ReviewDone:     {ReviewInReview, ReviewArchived},
	ReviewArchived: {ReviewInReview},
}

// NextStatuses returns where a submission in status may move.
func NextStatuses(status string) []string { return reviewMoves[status] }

// Submissions is the clinical store of stage-2 submissions as staff see them.
type Submissions struct {
	pool      *pgxpool.Pool
	cursorKey []byte
	planner   searchPlanner // word statistics for text searches (search.go)
	now       func() time.Time
	// names: per form, the linkIds of the family and given name items,
	// found by item.definition (see UseForms).
	names map[string]forms.Identity
}

// UseForms tells the list which items hold each form's patient name: the
// ones whose item.definition names Patient.name.family and
// Patient.name.given, whatever their linkIds.
func (st *Submissions) UseForms(reg *forms.Registry) {
	st.names = map[string]forms.Identity{}
	for _, q := range reg.List() {
		if id := q.Identity(); id.Family != "" || id.Given != "" {
			st.names[q.ID] = id
		}
	}
}

// nameSQL is the list's name column: for each form that has identity items,
// "family, given" from its answers; NULL for other forms.
func (st *Submissions) nameSQL(arg func(any) string) string {
	if len(st.names) == 0 {
		return "NULL::text"
	}
	ids := make([]string, 0, len(st.names))
	for id := range st.names {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var b strings.Builder
	b.WriteString("CASE form_id")
	for _, formID := range ids {
		n := st.names[formID]
		part := func(linkID string) string {
			if linkID == "" {
				return "NULL"
			}
			return "answers -> " + arg(linkID) + " -> 0 ->> 'valueString'"
		}
		fmt.Fprintf(&b, " WHEN %s THEN concat_ws(', ', %s, %s)", arg(formID), part(n.Family), part(n.Given))
	}
	b.WriteString(" END")
	return b.String()
}

// NewSubmissions binds the store; cursors are authenticated under a key
// derived from the secret key, so a page cursor cannot be forged.
func NewSubmissions(pool *pgxpool.Pool, secret SecretKey, now func() time.Time) *Submissions {
	return &Submissions{pool: pool, cursorKey: secret.derive("list cursor v1"), now: now}
}

// ListFilter is what the list page asks for.
type ListFilter struct {
	FormID            string
	Status            string
	From, To          time.Time // dates (UTC midnight); To is inclusive
	Text              string    // a receipt, or words to find in the answers
	Oldest            bool      // sort oldest first instead of newest first
	IncludeSuperseded bool
	After             *Cursor
	Limit             int
}

// Cursor is the position after the last row of a page: keyset pagination
// on (received_at, id), so a page costs the same at row 50 as at row 900,000.
type Cursor struct {
	Oldest     bool
	ReceivedAt time.Time
	ID         int64
}

// EncodeCursor makes the opaque, authenticated form of a cursor.
func (st *Submissions) EncodeCursor(c Cursor) string {
	b := make([]byte, 0, 49)
	if c.Oldest {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(c.ReceivedAt.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.ID))
	m := hmac.New(sha256.New, st.cursorKey)
	m.Write(b)
	b = append(b, m.Sum(nil)[:16]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

var errBadCursor = errorf(CodeInvalid, "The page cursor is not valid. Start again from the first page.")

// DecodeCursor checks and decodes a cursor from EncodeCursor.
func (st *Submissions) DecodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 33 {
		return nil, errBadCursor
	}
	m := hmac.New(sha256.New, st.cursorKey)
	m.Write(b[:17])
	if !hmac.Equal(m.Sum(nil)[:16], b[17:]) || b[0] > 1 {
		return nil, errBadCursor
	}
	return &Cursor{Oldest: b[0] == 1, ReceivedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC(),
		ID: int64(binary.BigEndian.Uint64(b[9:17]))}, nil
}

// ListRow is one line of the list page.
type ListRow struct {
	ID         int64
	IntakeID   string
	Receipt    string
	FormID     string
	ReceivedAt time.Time
	Status     string
	Name       string // family and given name, when the form asks for them
	Superseded bool
	// Correction is "pending" for a linked correction not accepted yet,
	// "unverified" for a claim without its correction code, else "".
	Correction string
}

// ListPage is one page of the list.
type ListPage struct {
	Rows []ListRow
	Next *Cursor
}

var receiptPattern = regexp.MustCompile(`^[A-Z2-9]{4}(-?[A-Z2-9]{4}){5}$`)

// NormaliseReceipt returns the canonical receipt (groups of four joined by
// dashes) when s looks like one.
func NormaliseReceipt(s string) (string, bool) {
	s = strings.ToUpper(strings.Join(strings.Fields(s), ""))
	if !receiptPattern.MatchString(s) {
		return "", false
	}
	s = strings.ReplaceAll(s, "-", "")
	var parts []string
	for i := 0; i < len(s); i += 4 {
		parts = append(parts, s[i:i+4])
	}
	return strings.Join(parts, "-"), true
}

// searchTerms turns typed words into tsquery terms: every word must match,
// words of three or more letters as prefixes. The words are cut as
// transfer cuts a submission's answers (textsearch.Words: lower-cased runs
// of letters and digits), and the query is a tsquery literal, not parsed
// again by to_tsquery, so a word means the same on both sides. Only letters
// and digits reach the query, so its syntax cannot be injected.
func searchTerms(text string) ([]searchTerm, error) {
	var terms []searchTerm
	for _, w := range textsearch.Words(text) {
		n := len([]rune(w))
		if n > textsearch.MaxWordRunes {
			return nil, errorf(CodeInvalid, "A search word is too long.")
		}
		if t := (searchTerm{word: w, prefix: n >= 3}); !slices.Contains(terms, t) {
			terms = append(terms, t)
		}
	}
	if len(terms) == 0 {
		return nil, errorf(CodeInvalid, "Search for a receipt, or for a word of at least one letter or digit.")
	}
	if len(terms) > 8 {
		return nil, errorf(CodeInvalid, "Search for at most 8 words.")
	}
	return terms, nil
}

// MaxListLimit bounds a page.
const MaxListLimit = 200

// List returns one page of submissions matching f, newest first unless
// f.Oldest. Superseded submissions are hidden unless asked for.
func (st *Submissions) List(ctx context.Context, f ListFilter) (*ListPage, error) {
	if f.Limit <= 0 || f.Limit > MaxListLimit {
		f.Limit = 50
	}
	var terms []searchTerm
	receipt := ""
	if t := strings.TrimSpace(f.Text); t != "" {
		if r, ok := NormaliseReceipt(t); ok {
			receipt = r
		} else {
			var err error
			if terms, err = searchTerms(t); err != nil {
				return nil, err
			}
		}
	}
	if f.After != nil && f.After.Oldest != f.Oldest {
		return nil, errBadCursor
	}
	// build makes the query; plan says how a text search runs (search.go).
	build := func(plan searchPlan) (string, []any) {
		var conds []string
		var args []any
		arg := func(v any) string {
			args = append(args, v)
			return fmt.Sprintf("$%d", len(args))
		}
		if !f.IncludeSuperseded {
			conds = append(conds, "superseded_by IS NULL")
		}
		if f.FormID != "" {
			conds = append(conds, "form_id = "+arg(f.FormID))
		}
		if f.Status != "" {
			conds = append(conds, "status = "+arg(f.Status))
		}
		if !f.From.IsZero() {
			conds = append(conds, "received_at >= "+arg(f.From))
		}
		if !f.To.IsZero() {
			conds = append(conds, "received_at < "+arg(f.To.AddDate(0, 0, 1)))
		}
		if receipt != "" {
			conds = append(conds, "receipt = "+arg(receipt))
		}
		if len(terms) > 0 {
			conds = append(conds, searchSQL(arg, terms, plan))
		}
		dir, cmp := "DESC", "<"
		if f.Oldest {
			dir, cmp = "ASC", ">"
		}
		if f.After != nil {
			conds = append(conds, fmt.Sprintf("(received_at, id) %s (%s, %s)", cmp, arg(f.After.ReceivedAt), arg(f.After.ID)))
		}
		where := "true"
		if len(conds) > 0 {
			where = strings.Join(conds, " AND ")
		}
		return fmt.Sprintf(`SELECT id, intake_id::text, receipt, form_id, received_at, status,
  coalesce(%s, ''),
  superseded_by IS NOT NULL,
  CASE WHEN corrects_id IS NOT NULL AND correction_accepted_at IS NULL THEN 'pending'
       WHEN corrects_receipt IS NOT NULL AND NOT correction_verified THEN 'unverified' ELSE '' END
FROM submissions WHERE %s ORDER BY received_at %s, id %s LIMIT %s`, st.nameSQL(arg), where, dir, dir, arg(f.Limit+1)), args
	}
	page := &ListPage{}
	scan := func(rows pgx.Rows) error {
		page.Rows = page.Rows[:0]
		for rows.Next() {
			var r ListRow
			if err := rows.Scan(&r.ID, &r.IntakeID, &r.Receipt, &r.FormID, &r.ReceivedAt, &r.Status, &r.Name, &r.Superseded, &r.Correction); err != nil {
				return err
			}
			page.Rows = append(page.Rows, r)
		}
		return rows.Err()
	}
	if err := st.query(ctx, build, terms, f.Limit+1, scan); err != nil {
		return nil, fmt.Errorf("list submissions: %w", err)
	}
	if len(page.Rows) > f.Limit {
		page.Rows = page.Rows[:f.Limit]
		last := page.Rows[len(page.Rows)-1]
		page.Next = &Cursor{Oldest: f.Oldest, ReceivedAt: last.ReceivedAt, ID: last.ID}
	}
	return page, nil
}

// Detail is one submission with its review notes.
type Detail struct {
	Submission
	SupersededBy    *int64
	SupersededByRef string // intake id of the superseding submission
	Notes           []Note
}

// Note is a review note.
type Note struct {
	ID      int64
	StaffID int64
	Email   string
	At      time.Time
	Body    string
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Get returns a submission by its opaque id (intake's submission UUID).
func (st *Submissions) Get(ctx context.Context, ref string) (*Detail, error) {
	if !uuidPattern.MatchString(ref) {
		return nil, errNotFound
	}
	var d Detail
	var answers []byte
	var supRef *string
	err := st.pool.QueryRow(ctx, `SELECT s.id, s.intake_id::text, s.succession, s.receipt, s.form_id, s.form_version,
  s.submitted_at, s.received_at, s.status, s.answers, s.superseded_by, n.intake_id::text
FROM submissions s LEFT JOIN submissions n ON n.id = s.superseded_by WHERE s.intake_id = $1`, ref).Scan(
		&d.ID, &d.IntakeID, &d.Succession, &d.Receipt, &d.FormID, &d.FormVersion, &d.SubmittedAt, &d.ReceivedAt,
		&d.Status, &answers, &d.SupersededBy, &supRef)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read submission: %w", err)
	}
	if supRef != nil {
		d.SupersededByRef = *supRef
	}
	if err := json.Unmarshal(answers, &d.Answers); err != nil {
		return nil, fmt.Errorf("decode answers of submission %d: %w", d.ID, err)
	}
	rows, err := st.pool.Query(ctx, `SELECT n.id, n.staff_id, st.email, n.at, n.body FROM submission_notes n
JOIN staff st ON st.id = n.staff_id WHERE n.submission_id = $1 ORDER BY n.id`, d.ID)
	if err != nil {
		return nil, fmt.Errorf("read notes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n Note
		if err := rows.Scan(&n.ID, &n.StaffID, &n.Email, &n.At, &n.Body); err != nil {
			return nil, fmt.Errorf("read notes: %w", err)
		}
		d.Notes = append(d.Notes, n)
	}
	return &d, rows.Err()
}

// SetStatus moves a submission along the review workflow, in tx (which
// appends the audit entry that records it). from is the status the user
// saw, so two reviewers cannot overwrite each other.
func (st *Submissions) SetStatus(ctx context.Context, tx pgx.Tx, id int64, from, to string) error {
	if !slices.Contains(reviewMoves[from], to) {
		return errorf(CodeInvalid, "A submission cannot move from that status to that status.")
	}
	tag, err := tx.Exec(ctx, `UPDATE submissions SET status = $3, status_changed_at = $4 WHERE id = $1 AND status = $2`,
		id, from, to, st.now())
	if err != nil {
		return fmt.Errorf("set status of submission %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return errorf(CodeConflict, "Someone changed this submission meanwhile. Reload it and try again.")
	}
	return nil
}

// MaxNoteLength bounds a review note.
const MaxNoteLength = 10000

// AddNote adds a review note, in tx (which appends the audit entry that
// records it), and returns its id.
func (st *Submissions) AddNote(ctx context.Context, tx pgx.Tx, submissionID, staffID int64, body string) (int64, error) {
	body = strings.TrimSpace(body)
	if body == "" {
		return 0, errorf(CodeInvalid, "Write a note first.")
	}
	if len([]rune(body)) > MaxNoteLength {
		return 0, errorf(CodeInvalid, "A note may have at most %d characters.", MaxNoteLength)
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO submission_notes (submission_id, staff_id, at, body) VALUES ($1, $2, $3, $4) RETURNING id`,
		submissionID, staffID, st.now(), body).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("add note: %w", err)
	}
	return id, nil
}

// IDByReceipt finds a submission by the receipt a patient quotes.
func (st *Submissions) IDByReceipt(ctx context.Context, receipt string) (int64, error) {
	r, ok := NormaliseReceipt(receipt)
	if !ok {
		return 0, errorf(CodeInvalid, "Enter the receipt as printed, such as ABCD-EFGH-JKLM-NPQR-STUV-WXYZ.")
	}
	var id int64
	err := st.pool.QueryRow(ctx, `SELECT id FROM submissions WHERE receipt = $1`, r).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errorf(CodeNotFound, "No submission has that receipt.")
	}
	return id, err
}

// Erase deletes one submission and its notes for good (an erasure
// request), and records it in the audit log in the same transaction:
// erase_submission refuses without that entry. The audit log keeps only
// ids, so it stays intact.
func (st *Submissions) Erase(ctx context.Context, tx *AuditTx, actor string, id int64) error {
	// The row lock first, then the audit log's append lock: every audited
	// change takes them in this order.
	var found int64
	err := tx.QueryRow(ctx, `SELECT id FROM submissions WHERE id = $1 FOR UPDATE`, id).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound
	}
	if err != nil {
		return fmt.Errorf("erase submission %d: %w", id, err)
	}
	if _, err := tx.Append(ctx, actor, "submission.erase", fmt.Sprintf("submission:%d", id), map[string]any{}); err != nil {
		return err
	}
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT erase_submission($1)`, id).Scan(&ok); err != nil {
		return fmt.Errorf("erase submission %d: %w", id, err)
	}
	if !ok {
		return errNotFound
	}
	return nil
}

// retentionBatch bounds one retention delete, so a first run over years of
// data does not hold one huge transaction.
const retentionBatch = 1000

// DeleteDoneBefore deletes submissions done before cutoff, in batches, and
// returns how many. Each batch commits with the audit entry that lists its
// ids (action retention.delete, by actor): retention_delete_audited deletes
// exactly the ids of that entry, or nothing.
func (st *Submissions) DeleteDoneBefore(ctx context.Context, audit *Audit, actor string, cutoff time.Time) (int, error) {
	// The entry says the cutoff in whole seconds; select by the same.
	cutoff = cutoff.UTC().Truncate(time.Second)
	total := 0
	for {
		var ids []int64
		err := audit.InTx(ctx, func(tx *AuditTx) error {
			rows, err := tx.Query(ctx, `SELECT id FROM submissions
WHERE status = 'done' AND coalesce(status_changed_at, received_at) < $1
ORDER BY id LIMIT $2 FOR UPDATE`, cutoff, retentionBatch)
			if err != nil {
				return err
			}
			ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil || len(ids) == 0 {
				return err
			}
			if _, err := tx.Append(ctx, actor, "retention.delete", "", map[string]any{
				"cutoff": cutoff.Format(time.RFC3339), "count": len(ids), "ids": ids}); err != nil {
				return err
			}
			rows, err = tx.Query(ctx, `SELECT retention_delete_audited()`)
			if err != nil {
				return err
			}
			gone, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err == nil && len(gone) != len(ids) {
				err = fmt.Errorf("deleted %d of %d audited submissions", len(gone), len(ids))
			}
			return err
		})
		if err != nil {
			return total, fmt.Errorf("retention: %w", err)
		}
		total += len(ids)
		if len(ids) < retentionBatch {
			return total, nil
		}
	}
}

// searchBudget is how long a text search may run with the plan it starts
// with before it runs another way; walkRetryBudget is how long the walk
// that follows an overrun through the index may take: a word the
// statistics took for rare but that is common finds its page by walking in
// a few milliseconds, and a rare word slowed by a loaded server should not
// wait long for a walk that cannot work.
const (
	searchBudget    = 60 * time.Millisecond
	walkRetryBudget = 20 * time.Millisecond
)

// query runs a list query made by build. A text search starts with the plan
// planSearch picks (search.go). When a walk overruns searchBudget, the
// search runs again through the index, with no budget: its cost is bounded
// by the rows that match. When the index overruns it, the search walks for
// at most walkRetryBudget, then runs through the index with no budget.
// Every plan gives the same rows; docs/clinical.md has the measurements.
func (st *Submissions) query(ctx context.Context, build func(searchPlan) (string, []any), terms []searchTerm, pageSize int,
	scan func(pgx.Rows) error) error {
	run := func(plan searchPlan, budget time.Duration) error {
		sql, args := build(plan)
		return pg.InTx(ctx, st.pool, func(tx pgx.Tx) error {
			var settings []string
			if budget > 0 {
				settings = append(settings, fmt.Sprintf("SET LOCAL statement_timeout = %d", budget.Milliseconds()))
			}
			if len(terms) > 0 && plan.walk() {
				// ts_match_vq is no index condition, but the planner could
				// still gather the filter's rows and sort them: walk in order.
				settings = append(settings, "SET LOCAL enable_bitmapscan = off")
			}
			if len(settings) > 0 {
				if _, err := tx.Exec(ctx, strings.Join(settings, "; ")); err != nil {
					return err
				}
			}
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			return scan(rows)
		})
	}
	if len(terms) == 0 {
		return run(searchPlan{}, 0)
	}
	freq, minFreq, rows := st.planner.stats(ctx, st.pool, st.now())
	index := indexPlan(terms, freq, minFreq)
	walk := searchPlan{index: make([]bool, len(terms))}
	overran := func(err error) bool {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == "57014" && ctx.Err() == nil // query_canceled by the timeout
	}
	if planSearch(terms, freq, minFreq, rows, pageSize).walk() {
		if err := run(walk, searchBudget); !overran(err) {
			return err
		}
		return run(index, 0)
	}
	if err := run(index, searchBudget); !overran(err) {
		return err
	}
	if err := run(walk, walkRetryBudget); !overran(err) {
		return err
	}
	return run(index, 0)
}
