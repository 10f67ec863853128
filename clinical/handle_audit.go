package clinical

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// auditRow is one audit entry as the audit page shows it: people by email,
// the action and its details in words. The stored entry (ids and JSON) is
// what `clinical audit export` prints; this page only reads it out.
type auditRow struct {
	ID         int64
	At         time.Time
	Actor      string // an email, or who acted when no one logged in
	Action     string // the stored action, e.g. login.success
	ActionText string // the action in words
	Target     string
	Details    []string // "label: value", in words
}

// actionTexts says in words what each audited action was.
var actionTexts = map[string]string{
	"login.success":       "Logged in",
	"login.failure":       "Login refused",
	"login.throttled":     "Logins throttled",
	"enrol.start":         "Started setting up the account",
	"enrol.failure":       "Account set-up refused",
	"enrol.throttled":     "Account set-up throttled",
	"staff.enrol":         "Finished setting up the account",
	"logout":              "Logged out",
	"logout.everywhere":   "Logged out everywhere",
	"staff.create":        "Created an account",
	"staff.approve":       "Approved an account",
	"staff.roles":         "Changed an account's roles",
	"staff.disable":       "Disabled an account",
	"staff.reset":         "Reset an account",
	"submission.list":     "Listed submissions",
	"submission.view":     "Opened a submission",
	"submission.status":   "Changed a submission's status",
	"submission.note":     "Added a note",
	"submission.erase":    "Erased a submission",
	"attachment.download": "Downloaded an attachment",
	"correction.accept":   "Accepted a correction",
	"result.publish":      "Published a result",
	"result.withdraw":     "Withdrew a result",
	"export":              "Exported submissions",
	"retention.delete":    "Deleted submissions past retention",
	"access.denied":       "Access denied",
	"audit.view":          "Opened the audit log",
	"audit.export":        "Exported the audit log",
}

// failureReasons says in words why a login or an enrolment was refused.
var failureReasons = map[string]string{
	"password":          "wrong password",
	"password-too-long": "password too long",
	"unknown-account":   "no account with that email",
	"not-enrolled":      "account not set up yet",
	"disabled":          "account disabled",
	"pending":           "account awaiting approval",
	"code-missing":      "no authenticator code",
	"code":              "wrong authenticator code",
	"code-reused":       "authenticator code used already (or an older one)",
	"codes":             "wrong enrolment codes",
	"codes-used":        "enrolment codes used already",
	"enrolled":          "account set up already",
}

// detailLabels names the detail keys; a key not listed is shown with its
// underscores as spaces.
var detailLabels = map[string]string{
	"count":               "rows",
	"ids":                 "submissions",
	"text":                "search text",
	"max_id":              "up to",
	"include_superseded":  "superseded included",
	"notes_carried":       "notes carried over",
	"birth_date_required": "date of birth asked",
	"limit":               "limit reached",
	"supersedes":          "supersedes",
	"corrects":            "corrects",
	"sessions":            "sessions ended",
	"note":                "note",
	"result":              "result",
	"size":                "size",
}

// auditNames resolves the staff an audit page names (actor and target
// "staff:<id>") to their emails, in one query.
func (s *Server) auditNames(ctx context.Context, entries []Entry) (map[string]string, error) {
	var ids []int64
	for _, e := range entries {
		for _, ref := range []string{e.Actor, e.Target} {
			if v, ok := strings.CutPrefix(ref, "staff:"); ok {
				if id, err := strconv.ParseInt(v, 10, 64); err == nil && !slices.Contains(ids, id) {
					ids = append(ids, id)
				}
			}
		}
	}
	names := map[string]string{}
	if len(ids) == 0 {
		return names, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, email FROM staff WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read staff emails: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var email string
		if err := rows.Scan(&id, &email); err != nil {
			return nil, fmt.Errorf("read staff emails: %w", err)
		}
		names[fmt.Sprintf("staff:%d", id)] = email
	}
	return names, rows.Err()
}

// auditRows reads entries out for the page.
func (s *Server) auditRows(ctx context.Context, entries []Entry) ([]auditRow, error) {
	names, err := s.auditNames(ctx, entries)
	if err != nil {
		return nil, err
	}
	out := make([]auditRow, len(entries))
	for i, e := range entries {
		text := actionTexts[e.Action]
		if text == "" {
			text = e.Action
		}
		out[i] = auditRow{ID: e.ID, At: e.At, Action: e.Action, ActionText: text,
			Actor: refText(e.Actor, names), Target: refText(e.Target, names), Details: s.detailText(e.Action, e.Detail)}
	}
	return out, nil
}

// refText is an actor or target in words: a staff member by email, a
// submission by its number.
func refText(ref string, names map[string]string) string {
	kind, v, _ := strings.Cut(ref, ":")
	switch {
	case ref == "":
		return ""
	case names[ref] != "":
		return names[ref]
	case kind == "staff":
		return "staff account #" + v + " (no longer held)"
	case kind == "submission":
		return "submission #" + v
	case kind == "submission-ref":
		return "submission " + v
	case kind == "cli":
		return "command line (" + v + ")"
	case kind == "system":
		return "system (" + v + ")"
	case ref == "anonymous":
		return "not logged in"
	}
	return ref
}

// detailText reads an entry's JSON detail out as "label: value" lines.
// A detail that is not a JSON object is shown as stored.
func (s *Server) detailText(action, detail string) []string {
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(detail))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		if detail == "" || detail == "{}" {
			return nil
		}
		return []string{detail}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	if route, ok := m["route"].(string); ok {
		method, _ := m["method"].(string)
		out = append(out, "request: "+strings.TrimSpace(method+" "+route))
	}
	for _, k := range keys {
		v := m[k]
		label := detailLabels[k]
		if label == "" {
			label = strings.ReplaceAll(k, "_", " ")
		}
		var text string
		switch {
		case k == "route" || k == "method":
			continue
		case k == "before" && action == "audit.view":
			if n, err := v.(json.Number).Int64(); err == nil && n != math.MaxInt64 {
				label, text = "page", fmt.Sprintf("entries before #%d", n)
			} else {
				label, text = "page", "newest entries"
			}
		case k == "reason":
			r, _ := v.(string)
			text = failureReasons[r]
			if text == "" {
				text = strings.ReplaceAll(r, "-", " ")
			}
		case k == "form":
			id, _ := v.(string)
			text = id
			if q, ok := s.forms.Get(id); ok && q.Title != "" {
				text = q.Title + " (" + id + ")"
			}
		case (k == "from" || k == "to") && action == "submission.status", k == "status" && action != "staff.create":
			st, _ := v.(string)
			text = statusLabel(st)
		case k == "format":
			f, _ := v.(string)
			text = strings.ToUpper(f)
		case k == "max_id":
			text = "submission #" + valueText(v)
		case k == "ids":
			text = idsText(v)
		case k == "size":
			text = valueText(v) + " bytes"
		case k == "item":
			label = "question"
		case k == "index":
			label, text = "answer", "#"+valueText(v)
			if n, err := v.(json.Number).Int64(); err == nil {
				text = fmt.Sprintf("#%d", n+1) // stored from 0
			}
		}
		if text == "" {
			text = valueText(v)
		}
		out = append(out, label+": "+text)
	}
	return out
}

// idsText lists submission ids, the first twenty of them.
func idsText(v any) string {
	list, _ := v.([]any)
	if len(list) == 0 {
		return "none"
	}
	const shown = 20
	parts := make([]string, 0, min(len(list), shown))
	for _, id := range list[:min(len(list), shown)] {
		parts = append(parts, "#"+valueText(id))
	}
	text := strings.Join(parts, ", ")
	if len(list) > shown {
		text += fmt.Sprintf(" and %d more", len(list)-shown)
	}
	return text
}

// valueText is one detail value in words: yes/no for booleans, dates as
// the page shows them, references by number, lists joined.
func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case json.Number:
		return x.String()
	case string:
		if t, err := time.Parse(time.RFC3339, x); err == nil {
			return t.UTC().Format("2006-01-02 15:04 UTC")
		}
		if kind, n, ok := strings.Cut(x, ":"); ok && (kind == "submission" || kind == "staff") {
			if _, err := strconv.ParseInt(n, 10, 64); err == nil {
				return kind + " #" + n
			}
		}
		return x
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = valueText(e)
		}
		return strings.Join(parts, ", ")
	}
	b, _ := json.Marshal(v)
	return string(b)
}
