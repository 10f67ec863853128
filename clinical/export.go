package clinical

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/pg"
)

// ExportFilter selects the submissions to export.
type ExportFilter struct {
	FormID string    // "" = every form
	Since  time.Time // zero = from the beginning; compared with received_at
	Status string    // "" = every review status
	Before time.Time // zero = up to now; received_at before this
	// IncludeSuperseded also exports the submissions a correction
	// superseded, marked as such; by default an export holds current data only.
	IncludeSuperseded bool
	// MaxID, when not 0, leaves out rows above it: the app's export holds
	// exactly the rows its page counted (Count), none that came after.
	MaxID int64
}

// Count is how many submissions f selects, and the highest id among them.
func (x *Exporter) Count(ctx context.Context, f ExportFilter) (count, maxID int64, err error) {
	where, args := exportWhere(f)
	err = x.Pool.QueryRow(ctx, `SELECT count(*), coalesce(max(id), 0) FROM submissions WHERE `+where, args...).Scan(&count, &maxID)
	if err != nil {
		return 0, 0, fmt.Errorf("count export: %w", err)
	}
	return count, maxID, nil
}

// Submission is one stage-2 submission as stored in clinical.
type Submission struct {
	ID          int64
	IntakeID    string
	Succession  int64
	Receipt     string
	FormID      string
	FormVersion string
	SubmittedAt time.Time
	ReceivedAt  time.Time
	Status      string
	Answers     forms.Answers
	// SupersededBy is the id of the submission that corrects this one.
	SupersededBy *int64
	// SupersededByRef is that submission's IntakeID: the id staff see in
	// URLs and in both exports.
	SupersededByRef string
}

// Exporter writes stage-2 submissions as FHIR NDJSON or CSV, and writes every
// export to the audit log before a single row leaves the database.
type Exporter struct {
	Pool  *pgxpool.Pool
	Audit *Audit
	Forms *forms.Registry
	// Progress, when set, is told the rows written so far and how many the
	// export holds.
	Progress func(written, total int64)
}

// ReceiptSystem is the identifier system of a submission's receipt in FHIR.
const ReceiptSystem = "https://airlock.dev/fhir/sid/receipt"

// Export writes the selected submissions to w in format ("ndjson" or "csv")
// on behalf of actor, and returns how many it wrote.
func (x *Exporter) Export(ctx context.Context, w io.Writer, format, actor string, f ExportFilter) (int64, error) {
	where, args := exportWhere(f)
	count, maxID, err := x.Count(ctx, f)
	if err != nil {
		return 0, err
	}
	// A CSV's columns are known before anything is audited or written: one
	// per question, per instance of each repeating group as the rows hold.
	var cols []string
	if format == "csv" {
		counts, err := x.instanceCounts(ctx, f, where, args, maxID)
		if err != nil {
			return 0, err
		}
		var ok bool
		if cols, ok = x.csvColumns(f.FormID, counts, MaxCSVColumns); !ok {
			return 0, ErrCSVTooWide
		}
	}
	// Fail closed: no audit entry, no export. The entry names exactly the
	// rows that follow (every id up to maxID that matches the filter).
	detail := map[string]any{"format": format, "count": count, "max_id": maxID}
	if f.FormID != "" {
		detail["form"] = f.FormID
	}
	if !f.Since.IsZero() {
		detail["since"] = f.Since.UTC().Format(time.RFC3339)
	}
	if f.Status != "" {
		detail["status"] = f.Status
	}
	if !f.Before.IsZero() {
		detail["before"] = f.Before.UTC().Format(time.RFC3339)
	}
	if f.IncludeSuperseded {
		detail["include_superseded"] = true
	}
	if _, err := x.Audit.Append(ctx, actor, "export", "", detail); err != nil {
		return 0, err
	}
	// One statement streams every row: it stays open while they go to the
	// consumer, however slow, so the pool's statement timeout would cut a
	// large export short.
	tx, err := pg.BeginLongRead(ctx, x.Pool)
	if err != nil {
		return 0, fmt.Errorf("read submissions: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT id, intake_id::text, succession, receipt, form_id, form_version,
  submitted_at, received_at, status, answers, superseded_by,
  coalesce((SELECT c.intake_id::text FROM submissions c WHERE c.id = submissions.superseded_by), '')
FROM submissions WHERE `+where+fmt.Sprintf(` AND id <= $%d ORDER BY id`, len(args)+1), append(args, maxID)...)
	if err != nil {
		return 0, fmt.Errorf("read submissions: %w", err)
	}
	defer rows.Close()
	var write func(*Submission) error
	var flush func() error
	switch format {
	case "ndjson":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		write = func(s *Submission) error { return enc.Encode(x.QuestionnaireResponse(s)) }
		flush = func() error { return nil }
	case "csv":
		cw := csv.NewWriter(w)
		fixed := csvFixed
		if f.IncludeSuperseded {
			fixed = append(slices.Clone(csvFixed), "superseded_by")
		}
		header := slices.Clone(fixed)
		for _, c := range cols {
			header = append(header, csvSafe(c))
		}
		if err := cw.Write(header); err != nil {
			return 0, err
		}
		write = func(s *Submission) error { return cw.Write(x.csvRow(s, cols, f.IncludeSuperseded)) }
		flush = func() error { cw.Flush(); return cw.Error() }
	default:
		return 0, fmt.Errorf("unknown export format %q", format)
	}
	var n int64
	for rows.Next() {
		var s Submission
		var answers []byte
		if err := rows.Scan(&s.ID, &s.IntakeID, &s.Succession, &s.Receipt, &s.FormID, &s.FormVersion,
			&s.SubmittedAt, &s.ReceivedAt, &s.Status, &answers, &s.SupersededBy, &s.SupersededByRef); err != nil {
			return n, fmt.Errorf("read submission: %w", err)
		}
		if err := json.Unmarshal(answers, &s.Answers); err != nil {
			return n, fmt.Errorf("decode answers of submission %d: %w", s.ID, err)
		}
		if err := write(&s); err != nil {
			return n, fmt.Errorf("write export: %w", err)
		}
		n++
		if x.Progress != nil {
			x.Progress(n, count)
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read submissions: %w", err)
	}
	return n, flush()
}

func exportWhere(f ExportFilter) (string, []any) {
	conds, args := []string{"true"}, []any{}
	if !f.IncludeSuperseded {
		conds = append(conds, "superseded_by IS NULL")
	}
	if f.FormID != "" {
		args = append(args, f.FormID)
		conds = append(conds, fmt.Sprintf("form_id = $%d", len(args)))
	}
	if !f.Since.IsZero() {
		args = append(args, f.Since)
		conds = append(conds, fmt.Sprintf("received_at >= $%d", len(args)))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		conds = append(conds, fmt.Sprintf("status = $%d", len(args)))
	}
	if !f.Before.IsZero() {
		args = append(args, f.Before)
		conds = append(conds, fmt.Sprintf("received_at < $%d", len(args)))
	}
	if f.MaxID != 0 {
		args = append(args, f.MaxID)
		conds = append(conds, fmt.Sprintf("id <= $%d", len(args)))
	}
	return strings.Join(conds, " AND "), args
}

// QuestionnaireResponse is the FHIR R4 resource of one submission.
type QuestionnaireResponse struct {
	ResourceType  string               `json:"resourceType"`
	ID            string               `json:"id"`
	Identifier    Identifier           `json:"identifier"`
	Questionnaire string               `json:"questionnaire"`
	Status        string               `json:"status"`
	Authored      string               `json:"authored"`
	Item          []forms.ResponseItem `json:"item,omitempty"`
}

// Identifier is a FHIR Identifier.
type Identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// QuestionnaireResponse builds the FHIR resource, nesting answers as the form
// does, naming the form's canonical (url|version, or url alone when the form
// has no version). A submission of a form clinical does not know is exported
// flat, naming it as Questionnaire/<form id>. A
// superseded submission has status "amended": a later one corrects it.
func (x *Exporter) QuestionnaireResponse(s *Submission) QuestionnaireResponse {
	r := QuestionnaireResponse{
		ResourceType:  "QuestionnaireResponse",
		ID:            s.IntakeID,
		Identifier:    Identifier{System: ReceiptSystem, Value: s.Receipt},
		Questionnaire: "Questionnaire/" + s.FormID,
		Status:        "completed",
		Authored:      s.SubmittedAt.UTC().Format(time.RFC3339),
	}
	if s.SupersededBy != nil {
		r.Status = "amended"
	}
	if q, ok := x.Forms.Get(s.FormID); ok {
		r.Questionnaire = q.Canonical(s.FormVersion)
		r.Item = q.ResponseItems(s.Answers)
		return r
	}
	ids := make([]string, 0, len(s.Answers))
	for id := range s.Answers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		r.Item = append(r.Item, forms.ResponseItem{LinkID: id, Answer: s.Answers[id]})
	}
	return r
}

var csvFixed = []string{"id", "receipt", "form", "form_version", "submitted_at", "received_at", "status"}

// MaxCSVColumns bounds a CSV export's columns. Nested repeating groups
// multiply: the most instances of an outer group in one submission times
// the most of an inner group in another (each within forms' per-submission
// bound) made two submissions ask for two million columns, 2 MB of commas
// per row. Past the bound the CSV is refused; NDJSON nests and has no such
// limit.
const MaxCSVColumns = 10000

// ErrCSVTooWide refuses a CSV export that would exceed MaxCSVColumns.
var ErrCSVTooWide = &Error{Code: CodeInvalid, Msg: fmt.Sprintf("A CSV of these submissions would have more than %d columns, "+
	"because their repeating groups hold many entries. Export FHIR NDJSON instead, or choose fewer submissions.", MaxCSVColumns)}

// csvColumns are the field names of the exported form's questions, or of
// every known form's (first occurrence wins) when the export spans forms.
// A question outside repeating groups is its linkId; one inside is named by
// its instance, "meds[2]/dose", with as many instances as the exported
// rows hold at most (counts, by group path; at least one). ok is false,
// and the work stops, when there would be more than limit columns.
func (x *Exporter) csvColumns(formID string, counts map[string]int, limit int) (cols []string, ok bool) {
	seen := map[string]bool{}
	var add func(members []*forms.Item, prefix string)
	add = func(members []*forms.Item, prefix string) {
		for _, it := range members {
			if len(cols) > limit {
				return
			}
			if !it.Carried {
				continue
			}
			if name := prefix + it.LinkID; !it.RepeatingGroup() && !seen[name] {
				seen[name] = true
				cols = append(cols, name)
			}
			if it.HasInstances() {
				// A repeating group's instances, or the answers of a
				// repeating question with the questions under each.
				n := max(counts[groupPath(it)], 1)
				for i := 1; i <= n; i++ {
					add(it.Members(), forms.InstanceField(prefix, it.LinkID, i))
				}
			}
		}
	}
	for _, q := range x.Forms.List() {
		if formID != "" && q.ID != formID {
			continue
		}
		add(q.Members(), "")
	}
	if len(cols) > limit {
		return nil, false
	}
	return cols, true
}

// groupPath names a repeating group by the repeating groups it sits in,
// outermost first: "visits/meds".
func groupPath(g *forms.Item) string {
	path := g.LinkID
	for s := g.Scope(); s != nil; s = s.Scope() {
		path = s.LinkID + "/" + path
	}
	return path
}

// instanceCounts finds, for each repeating group of the exported forms, the
// most instances one exported submission holds (one aggregate query per
// group, so the CSV header is known before the rows stream).
func (x *Exporter) instanceCounts(ctx context.Context, f ExportFilter, where string, args []any, maxID int64) (map[string]int, error) {
	counts := map[string]int{}
	for _, q := range x.Forms.List() {
		if f.FormID != "" && q.ID != f.FormID {
			continue
		}
		var groups []*forms.Item
		var walk func(members []*forms.Item)
		walk = func(members []*forms.Item) {
			for _, it := range members {
				if it.HasInstances() && it.Carried {
					groups = append(groups, it)
					walk(it.Members())
				}
			}
		}
		walk(q.Members())
		for _, g := range groups {
			// The answers' JSON path to the group's instances: each
			// enclosing group's instances, then the group.
			var steps []string
			for s := g.Scope(); s != nil; s = s.Scope() {
				key, _ := json.Marshal(s.LinkID)
				steps = append([]string{string(key) + "[*].instance"}, steps...)
			}
			key, _ := json.Marshal(g.LinkID)
			path := "$." + strings.Join(append(steps, string(key)), ".")
			a := append(slices.Clone(args), q.ID, path, maxID)
			var n int
			err := x.Pool.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(max(jsonb_array_length(g)), 0)
FROM submissions, jsonb_path_query(answers, $%d::jsonpath) AS g
WHERE `+where+` AND form_id = $%d AND id <= $%d AND jsonb_typeof(g) = 'array'`, len(args)+2, len(args)+1, len(args)+3), a...).Scan(&n)
			if err != nil {
				return nil, fmt.Errorf("count instances of %s/%s: %w", q.ID, g.LinkID, err)
			}
			counts[groupPath(g)] = max(counts[groupPath(g)], n)
		}
	}
	return counts, nil
}

// csvRow is one submission's CSV record; withSuperseded adds the
// superseded_by column after status (empty for a current submission).
// Both ids are the submission's public id (IntakeID): the one in the staff
// app's URLs and the FHIR export's QuestionnaireResponse.id, never the
// database's row number.
func (x *Exporter) csvRow(s *Submission, cols []string, withSuperseded bool) []string {
	// Receipt and form version are not typed by staff either: they come from
	// the sealed payload and the intake row, which a compromised intake host
	// holding the row key chooses, so they are defused like answers.
	row := []string{s.IntakeID, csvSafe(s.Receipt), s.FormID, csvSafe(s.FormVersion),
		s.SubmittedAt.UTC().Format(time.RFC3339), s.ReceivedAt.UTC().Format(time.RFC3339), s.Status}
	if withSuperseded {
		row = append(row, s.SupersededByRef)
	}
	byField := map[string][]forms.Value{}
	if q, ok := x.Forms.Get(s.FormID); ok {
		q.WalkAnswers(s.Answers, func(a forms.Answered) { byField[a.Field] = a.Values })
	} else {
		byField = s.Answers
	}
	for _, c := range cols {
		vals := byField[c]
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = v.String()
		}
		row = append(row, csvSafe(strings.Join(parts, "; ")))
	}
	return row
}

// csvSeparators are the characters a spreadsheet may split a CSV line on
// (or end a row at) when it guesses the separator or is told another one:
// comma, semicolon, TAB, pipe, and line breaks. A cell's text after any of
// them can start a cell of its own.
const csvSeparators = ",;\t|\n\r"

// csvTriggers start a formula (or, TAB and CR, hide what follows) when they
// begin a cell.
const csvTriggers = "=+-@\t\r"

// csvSafe defuses spreadsheet formula injection: wherever a cell may start
// in the text (at its beginning, and after every character of csvSeparators)
// it puts an apostrophe before a formula trigger (csvTriggers), skipping
// spaces and double quotes first, which a spreadsheet trims or takes as a
// quoted field. So "=1+41" is written "'=1+41", "x;=1+41" "x;'=1+41" and
// "aspirin<TAB>=2+40" "aspirin<TAB>'=2+40": whatever separator a spreadsheet
// splits on, no cell it makes starts with a trigger. Everything else is kept
// byte for byte.
func csvSafe(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 1)
	cellStart := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if cellStart {
			if c == ' ' || c == '"' {
				b.WriteByte(c)
				continue
			}
			if strings.IndexByte(csvTriggers, c) >= 0 {
				b.WriteByte('\'')
			}
		}
		b.WriteByte(c)
		cellStart = strings.IndexByte(csvSeparators, c) >= 0
	}
	return b.String()
}
