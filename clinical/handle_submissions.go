package clinical

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/airlockhq/airlock/shared/forms"
)

// listParams are the list page's inputs as the user gave them, for
// re-filling the form and building the next page's link.
type listParams struct {
	Form, Status, From, To, Sort, Text, Limit string
	Superseded                                bool
}

// values is the query string of a GET list page: never the search text.
func (p listParams) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"form": p.Form, "status": p.Status, "from": p.From, "to": p.To, "sort": p.Sort, "limit": p.Limit} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if p.Superseded {
		v.Set("superseded", "1")
	}
	return v
}

// parseListFilter reads and checks the list inputs of the request (the
// query of a GET, the form of a POST); anything malformed is a 422 with a
// message naming the field.
func (s *Server) parseListFilter(c echo.Context) (listParams, ListFilter, error) {
	p := listParams{
		Form: c.FormValue("form"), Status: c.FormValue("status"), From: c.FormValue("from"), To: c.FormValue("to"),
		Sort: c.FormValue("sort"), Superseded: c.FormValue("superseded") == "1", Limit: c.FormValue("limit"),
	}
	if c.Request().Method == http.MethodGet && c.QueryParams().Has("q") {
		return p, ListFilter{}, errorf(CodeInvalid, "Search text goes in the search form, never in the address.")
	}
	if c.Request().Method == http.MethodPost {
		p.Text = c.FormValue("q")
	}
	f, err := s.listFilter(p, c.FormValue("cursor"))
	return p, f, err
}

// listFilter checks list inputs, from a request or a saved search, and
// turns them into the store's filter.
func (s *Server) listFilter(p listParams, cursor string) (ListFilter, error) {
	var f ListFilter
	if p.Form != "" {
		if _, ok := s.forms.Get(p.Form); !ok {
			return f, errorf(CodeInvalid, "Form: choose one from the list.")
		}
	}
	if p.Status != "" && !slices.Contains(ReviewStatuses, p.Status) {
		return f, errorf(CodeInvalid, "Status: choose one from the list.")
	}
	var err error
	if f.From, err = parseDay(p.From, "From"); err != nil {
		return f, err
	}
	if f.To, err = parseDay(p.To, "To"); err != nil {
		return f, err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return f, errorf(CodeInvalid, "To: must not be before From.")
	}
	switch p.Sort {
	case "", "newest":
	case "oldest":
		f.Oldest = true
	default:
		return f, errorf(CodeInvalid, "Sort: choose newest or oldest first.")
	}
	if len(p.Text) > 200 {
		return f, errorf(CodeInvalid, "Search: at most 200 characters.")
	}
	if p.Limit != "" {
		n, err := strconv.Atoi(p.Limit)
		if err != nil || n < 1 || n > MaxListLimit {
			return f, errorf(CodeInvalid, "Limit: a number from 1 to %d.", MaxListLimit)
		}
		f.Limit = n
	}
	if cursor != "" {
		if f.After, err = s.subs.DecodeCursor(cursor); err != nil {
			return f, err
		}
	}
	f.FormID, f.Status, f.Text, f.IncludeSuperseded = p.Form, p.Status, p.Text, p.Superseded
	return f, nil
}

func parseDay(v, field string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		return t, errorf(CodeInvalid, "%s: enter a date as YYYY-MM-DD.", field)
	}
	return t, nil
}

// listView is the list page.
type listView struct {
	P         listParams
	Forms     []*forms.Questionnaire
	FormTitle map[string]string
	Statuses  []string
	Rows      []ListRow
	Next      string // cursor of the next page, "" on the last
	NextURL   string // the next page: filters and cursor, or the search id and cursor
	Searched  bool
}

// handleSearch takes the list form (POST, because its text may name a
// patient) and answers with a redirect to a GET page (post/redirect/get),
// so Back and reload never ask to send the form again. Filters alone go in
// the query string; a search with text is saved under an opaque id of this
// session (SavedSearches) and only the id goes in the URL.
func (s *Server) handleSearch(c echo.Context, sess *Session) error {
	p, f, err := s.parseListFilter(c)
	if err != nil {
		return err
	}
	q := url.Values{}
	if t := strings.TrimSpace(p.Text); t == "" {
		q = p.values()
	} else {
		// Refuse a search the list would refuse now, with the form's
		// 422, rather than on the page it redirects to.
		if _, ok := NormaliseReceipt(t); !ok {
			if _, err := searchTerms(t); err != nil {
				return err
			}
		}
		id, err := s.searches.Save(c.Request().Context(), sess.TokenHash, p)
		if err != nil {
			return err
		}
		q.Set("search", id)
	}
	if f.After != nil {
		q.Set("cursor", c.FormValue("cursor"))
	}
	return c.Redirect(http.StatusSeeOther, "/submissions?"+q.Encode())
}

// handleList shows the list: filtered by the query string, or by the
// saved search ?search= names (with ?cursor= for its later pages).
func (s *Server) handleList(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	var p listParams
	var f ListFilter
	var err error
	searchID := c.QueryParam("search")
	if searchID != "" {
		if c.QueryParams().Has("q") {
			return errorf(CodeInvalid, "Search text goes in the search form, never in the address.")
		}
		if p, err = s.searches.Load(ctx, sess.TokenHash, searchID); err != nil {
			return err
		}
		f, err = s.listFilter(p, c.QueryParam("cursor"))
	} else {
		p, f, err = s.parseListFilter(c)
	}
	if err != nil {
		return err
	}
	res, err := s.subs.List(ctx, f)
	if err != nil {
		return err
	}
	ids := make([]int64, len(res.Rows))
	for i, r := range res.Rows {
		ids[i] = r.ID
	}
	// The search text may be a name: the audit log records only that there
	// was one, and which rows it showed.
	detail := map[string]any{"count": len(ids), "ids": ids, "text": p.Text != ""}
	for k, v := range map[string]string{"form": p.Form, "status": p.Status, "from": p.From, "to": p.To} {
		if v != "" {
			detail[k] = v
		}
	}
	if _, err := s.audit.Append(ctx, sess.Staff.Actor(), "submission.list", "", detail); err != nil {
		return err
	}
	v := listView{P: p, Forms: s.forms.List(), FormTitle: map[string]string{}, Statuses: ReviewStatuses, Rows: res.Rows,
		Searched: p.Text != ""}
	for _, q := range v.Forms {
		v.FormTitle[q.ID] = q.Title
	}
	if res.Next != nil {
		v.Next = s.subs.EncodeCursor(*res.Next)
		q := p.values()
		if searchID != "" {
			q = url.Values{"search": {searchID}}
		}
		q.Set("cursor", v.Next)
		v.NextURL = "/submissions?" + q.Encode()
	}
	return s.render(c, http.StatusOK, "list", sess, &page{Title: "Submissions", Data: v})
}

// answerText is an answer as the staff pages show it: a boolean reads
// "Yes" or "No" like the choices beside it; the rest as forms renders it
// (the CSV export keeps forms' lower-case "yes"/"no").
func answerText(v forms.Value) string {
	if v.ValueBoolean != nil {
		if *v.ValueBoolean {
			return "Yes"
		}
		return "No"
	}
	return v.String()
}

// answerView is one rendered question and its answers.
type answerView struct {
	Label   string
	Answers []answerValue
	Items   []answerView // a group's children
	Group   bool
}

type answerValue struct {
	Text string
	Link string // attachment download, for roles that may download
}

// detailView is the detail page.
type detailView struct {
	D         *Detail
	FormTitle string
	Items     []answerView
	Next      []string
	Results   *resultsView // one-time results (handle_results.go); nil for viewers
	Corr      *CorrectionInfo
}

func (s *Server) answerViews(d *Detail, items []forms.ResponseItem, prefix string, canDownload bool) []answerView {
	var out []answerView
	q, _ := s.forms.Get(d.FormID)
	instances := map[string]int{} // repeating group linkId -> instances so far
	for _, it := range items {
		av := answerView{Label: it.Text, Group: len(it.Item) > 0}
		var fi *forms.Item
		if q != nil {
			fi = q.Item(it.LinkID)
		}
		if av.Label == "" && fi != nil {
			av.Label = fi.Label // a form item without text
		}
		if av.Label == "" {
			av.Label = it.LinkID
		}
		inner := prefix
		if fi != nil && fi.RepeatingGroup() {
			// Each instance of a repeating group is numbered, as on the
			// patient's form, and its answers are named by the instance.
			instances[it.LinkID]++
			n := instances[it.LinkID]
			av.Label = fmt.Sprintf("%s %d", strings.TrimRight(av.Label, " :?."), n)
			inner = forms.InstanceField(prefix, it.LinkID, n)
		}
		var nested []answerView
		for i, v := range it.Answer {
			a := answerValue{Text: answerText(v)}
			if v.ValueAttachment != nil && canDownload {
				a.Link = fmt.Sprintf("/submissions/%s/attachments/%s/%d", d.IntakeID, url.PathEscape(prefix+it.LinkID), i)
			}
			av.Answers = append(av.Answers, a)
			// Questions nested under this answer follow it; under a
			// repeating question they are named by the answer ("q[2]/x").
			under := prefix
			if fi != nil && fi.HasInstances() {
				under = forms.InstanceField(prefix, it.LinkID, i+1)
			}
			nested = append(nested, s.answerViews(d, v.Item, under, canDownload)...)
		}
		av.Items = s.answerViews(d, it.Item, inner, canDownload)
		out = append(out, av)
		out = append(out, nested...)
	}
	return out
}

func (s *Server) handleDetail(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	d, err := s.subs.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	if _, err := s.audit.Append(ctx, sess.Staff.Actor(), "submission.view", fmt.Sprintf("submission:%d", d.ID), map[string]any{}); err != nil {
		return err
	}
	v := detailView{D: d, FormTitle: d.FormID, Next: NextStatuses(d.Status)}
	if v.Corr, err = s.correctionsOf(ctx, d); err != nil {
		return err
	}
	var items []forms.ResponseItem
	if q, ok := s.forms.Get(d.FormID); ok {
		v.FormTitle = q.Title
		items = q.ResponseItems(d.Answers)
	} else {
		// A form this server does not know: show the answers by linkId.
		ids := make([]string, 0, len(d.Answers))
		for id := range d.Answers {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			items = append(items, forms.ResponseItem{LinkID: id, Answer: d.Answers[id]})
		}
	}
	clin := sess.Staff.Has(RoleClinician)
	v.Items = s.answerViews(d, items, "", clin)
	if clin {
		if v.Results, err = s.resultsFor(ctx, d); err != nil {
			return err
		}
	}
	if !clin {
		d.Notes = nil // the viewer's limited view: answers and status only
	}
	return s.render(c, http.StatusOK, "detail", sess, &page{Title: "Submission " + d.Receipt, Data: v, Notice: c.QueryParam("done")})
}

func (s *Server) handleStatus(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	d, err := s.subs.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	from, to := c.FormValue("from"), c.FormValue("to")
	if from != d.Status {
		return errorf(CodeConflict, "Someone changed this submission meanwhile. Reload it and try again.")
	}
	if !slices.Contains(NextStatuses(from), to) {
		return errorf(CodeInvalid, "A submission cannot move from that status to that status.")
	}
	err = s.audit.InTx(ctx, func(tx *AuditTx) error {
		if err := s.subs.SetStatus(ctx, tx, d.ID, from, to); err != nil {
			return err
		}
		_, err := tx.Append(ctx, sess.Staff.Actor(), "submission.status", fmt.Sprintf("submission:%d", d.ID),
			map[string]any{"from": from, "to": to})
		return err
	})
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/submissions/"+d.IntakeID+"?done=status")
}

func (s *Server) handleNote(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	d, err := s.subs.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	err = s.audit.InTx(ctx, func(tx *AuditTx) error {
		id, err := s.subs.AddNote(ctx, tx, d.ID, sess.Staff.ID, c.FormValue("body"))
		if err != nil {
			return err
		}
		_, err = tx.Append(ctx, sess.Staff.Actor(), "submission.note", fmt.Sprintf("submission:%d", d.ID),
			map[string]any{"note": id})
		return err
	})
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/submissions/"+d.IntakeID+"?done=note")
}

// inlineSafeTypes are the attachment types served under their own content
// type; anything else is application/octet-stream. Every download is
// Content-Disposition: attachment and sandboxed by CSP either way.
var inlineSafeTypes = []string{"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}

func (s *Server) handleAttachment(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	d, err := s.subs.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(c.Param("n"))
	item, _ := url.PathUnescape(c.Param("item"))
	// item is the field name: the linkId, or within an instance of a
	// repeating group "meds[2]/scan".
	values := d.Answers[item]
	if q, ok := s.forms.Get(d.FormID); ok {
		values = q.ValuesAt(d.Answers, item)
	}
	if err != nil || n < 0 || n >= len(values) || values[n].ValueAttachment == nil {
		return errNotFound
	}
	att := values[n].ValueAttachment
	if _, err := s.audit.Append(ctx, sess.Staff.Actor(), "attachment.download", fmt.Sprintf("submission:%d", d.ID),
		map[string]any{"item": item, "index": n}); err != nil {
		return err
	}
	ctype := "application/octet-stream"
	if mt, _, err := mime.ParseMediaType(att.ContentType); err == nil && slices.Contains(inlineSafeTypes, mt) {
		ctype = mt
	}
	h := c.Response().Header()
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": attachmentFilename(att.ContentType, n)}))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	return c.Blob(http.StatusOK, ctype, att.Data)
}
