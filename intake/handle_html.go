package intake

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
	"golang.org/x/text/language"

	"github.com/airlockhq/airlock/shared/forms"
	"github.com/airlockhq/airlock/shared/locale"
	"github.com/airlockhq/airlock/shared/seal"
)

// maxFormParts bounds the fields of one multipart submission.
const maxFormParts = 1000

// repeatInputs is how many text boxes a repeating free-text question gets.
const repeatInputs = 3

// maxRadioOptions: choice items with more options are a <select>.
const maxRadioOptions = 8

type formPage struct {
	page
	Description   string
	Action        string
	Enctype       string
	CSRF          string
	CSRFField     string
	HoneypotField string
	Notice        string
	Errors        []errorLink
	Items         []*itemView
	Corrects      correctsView
	// HasRepeats: the form has repeating groups, so its first submit
	// button is a hidden Send (Enter in a text box must send the form, not
	// add an instance).
	HasRepeats bool
}

// correctsView is the optional "This corrects an earlier submission"
// fieldset. The correction code typed is never shown again.
type correctsView struct {
	ReceiptField, CodeField string
	Receipt                 string
	ReceiptError, CodeError string
	Open                    bool
}

type errorLink struct{ Target, Text string }

// itemView is one item as the template draws it.
type itemView struct {
	Kind         string // group, display, input, repeat, textarea, choices, select, checkbox, file
	ID, Name     string
	Label, Hint  string
	Error        string
	Required     bool
	Value        string
	Checked      bool
	InputType    string
	InputMode    string
	MaxLength    int
	Autocomplete string
	Short        bool
	Inline       bool
	List         bool
	Multiple     bool
	Accept       string
	Unit         string // the unit shown after a number box
	UnitName     string // the field of a quantity's unit choice
	UnitLabel    string
	Options      []optionView
	Repeats      []repeatView
	Children     []*itemView
	// A repeating group: its instances, the hidden field that says how
	// many the page shows, and the "Add another" button.
	Instances          []instanceView
	CountName          string
	Count              int
	AddValue, AddLabel string
	AddAction          string

	target string // where the error summary links to
}

type optionView struct {
	ID, Value, Label string
	Checked          bool
}

// instanceView is one instance of a repeating group: a fieldset with a
// numbered legend and, when there is more than one, a Remove button.
type instanceView struct {
	ID, Legend               string
	Children                 []*itemView
	RemoveValue, RemoveLabel string
	RemoveAction             string
}

type repeatView struct {
	ID, Name, Label, Value string
	MaxLength              int
}

// DescribedBy lists the hint and error ids, for aria-describedby.
func (v *itemView) DescribedBy() string {
	var ids []string
	if v.Hint != "" {
		ids = append(ids, v.ID+"-hint")
	}
	if v.Error != "" {
		ids = append(ids, v.ID+"-error")
	}
	return strings.Join(ids, " ")
}

// formState is what a patient has entered so far, to show again with errors.
type formState struct {
	values url.Values
	errors map[string]locale.Message // linkId -> message

	correctsReceipt string // as typed in the corrections fieldset

	// applies says which items apply to the answers shown (their
	// enableWhen holds): only those are marked required. Set by buildForm.
	applies map[string]bool
}

// autocompleteHints help browsers fill in identity fields, found by the
// element their item.definition names (SDC definition-based extraction).
var autocompleteHints = map[string]string{
	forms.DefinitionFamily: "family-name", forms.DefinitionGiven: "given-name", forms.DefinitionBirthDate: "bday",
	"Patient.address": "street-address", "Patient.address.text": "street-address",
}

// autocomplete is the autocomplete attribute for an item: from its
// definition, else (email and phone boxes of the built-in form) its linkId.
func autocomplete(it *forms.Item) string {
	if h := autocompleteHints[it.DefinitionPath()]; h != "" {
		return h
	}
	return map[string]string{"email": "email", "phone": "tel", "address": "street-address"}[it.LinkID]
}

// applies reports whether an item applies to the answers on the page; an
// item Applies does not judge counts as applying.
func applies(st formState, name string) bool {
	ok, known := st.applies[name]
	return ok || !known
}

// buildForm turns a Questionnaire into the page's item views. Items inside
// an instance of a repeating group are named by the instance (the field
// names Validate uses in its errors: "meds[2]/dose") and get ids of their
// own.
func (s *Server) buildForm(pr *locale.Printer, q *forms.Questionnaire, st formState) []*itemView {
	ids := map[*forms.Item]string{}
	for i, it := range allItems(q.Items) {
		ids[it] = "q-" + strconv.Itoa(i+1)
	}
	// "(required)" and aria-required only while a question applies to the
	// answers on the page: the form's initial values on first view, what
	// the patient sent after that.
	values := st.values
	if values == nil {
		values = url.Values{}
		for _, it := range q.Questions() {
			for _, iv := range it.Initial {
				values.Add(it.FirstField(), initialKey(iv))
			}
		}
	}
	raw, _ := s.htmlAnswers(q, values, nil)
	st.applies = q.Applies(raw)
	action := "/forms/" + q.ID
	pageLeft := maxPageInstances
	var build func(items []*forms.Item, prefix, idSuffix string, fresh bool) []*itemView
	build = func(items []*forms.Item, prefix, idSuffix string, fresh bool) []*itemView {
		var out []*itemView
		for _, it := range items {
			if it.Hidden {
				continue
			}
			if p := it.Parent(); p != nil && p.Answerable() && it.Type == forms.TypeDisplay && isHint(p, it) {
				continue // drawn as the question's hint
			}
			name, id := prefix+it.LinkID, ids[it]+idSuffix
			v := s.itemView(pr, q, it, name, id, st, fresh)
			switch {
			case it.HasInstances():
				// A repeating group, or a repeating question with questions
				// under it: one fieldset per instance (per answer).
				v.Kind = "repeat-group"
				n := max(min(st.instanceCount(name, it), pageLeft), 1)
				pageLeft = max(pageLeft-n, 0)
				noun := strings.TrimRight(v.Label, " :?.")
				if noun == "" {
					noun = pr.T("intake.repeat.entry")
				}
				for i := 1; i <= n; i++ {
					ip := forms.InstanceField(prefix, it.LinkID, i)
					instFresh := fresh || !st.hasPrefix(ip)
					iv := instanceView{
						ID: fmt.Sprintf("%s-i%d", id, i), Legend: pr.T("intake.repeat.legend", noun, i),
						Children: build(it.Items, ip, fmt.Sprintf("%s-i%d", idSuffix, i), instFresh),
					}
					if it.Answerable() {
						// The answer itself, one per instance ("q[2]/q"),
						// before the questions under it.
						one := *it
						one.Repeats, one.Items = false, nil
						own := s.itemView(pr, q, &one, ip+it.LinkID, fmt.Sprintf("%s-i%d-a", id, i), st, instFresh)
						iv.Legend = pr.T("intake.repeat_label", noun, i)
						iv.Children = append([]*itemView{own}, iv.Children...)
					}
					if n > 1 {
						iv.RemoveValue = "remove:" + strings.TrimSuffix(ip, "/")
						iv.RemoveLabel = pr.T("intake.repeat.remove", iv.Legend)
						iv.RemoveAction = action + "#" + id
					}
					v.Instances = append(v.Instances, iv)
				}
				v.CountName, v.Count = countPrefix+name, n
				if n < maxInstances(it) {
					v.AddValue, v.AddLabel = "add:"+name, pr.T("intake.repeat.add", noun)
					v.AddAction = fmt.Sprintf("%s#%s-i%d", action, id, n+1)
				}
				if len(v.Instances) > 0 && v.target == id {
					v.target = v.Instances[0].ID
				}
				out = append(out, v)
			case it.Type == forms.TypeGroup:
				v.Children = build(it.Items, prefix, idSuffix, fresh)
				out = append(out, v)
			default:
				out = append(out, v)
				// Questions under a question follow it on the page.
				out = append(out, build(it.Items, prefix, idSuffix, fresh)...)
			}
		}
		return out
	}
	return build(q.Items, "", "", st.values == nil)
}

// Repeating groups on the HTML form: the "Add another" and "Remove" buttons
// post the form with repeatActionField set ("add:<group field>" or
// "remove:<instance>"), and the server draws it again with one instance
// more or less, keeping what was typed; countPrefix + the group's field is
// the hidden field that says how many instances the page shows.
const (
	repeatActionField = "_repeat"
	// langSwitchField is set by the language switch's buttons on a form's
	// page: draw the form again in the chosen language.
	langSwitchField = "_lang"
	countPrefix     = "count:"
	// maxShownInstances bounds the instances of one group a page draws,
	// whatever a request says; maxOccurs may bound them further.
	maxShownInstances = 100
	// maxPageInstances bounds the instances a whole page draws, nested
	// groups included: the per-group bound alone multiplies with nesting
	// (100 outer instances asking for 100 inner ones each drew 10,000,
	// a 13.6 MB page from a 3 KB request). Past it, each group draws one.
	maxPageInstances = 300
)

// maxInstances is how many instances of a repeating group the form may show.
func maxInstances(g *forms.Item) int {
	if g.MaxOccurs > 0 && g.MaxOccurs < maxShownInstances {
		return g.MaxOccurs
	}
	return maxShownInstances
}

// instanceCount is how many instances of the repeating group named field
// the page shows: as the page said (its count field), else as many as the
// posted fields name, else the minimum the form asks for (at least one).
func (st formState) instanceCount(field string, g *forms.Item) int {
	n := 0
	if c, err := strconv.Atoi(st.values.Get(countPrefix + field)); err == nil {
		n = c
	}
	for key := range st.values {
		key = strings.TrimPrefix(strings.TrimPrefix(key, "unit:"), countPrefix)
		if i, _, ok := instanceOf(key, field); ok && i > n {
			n = i
		}
	}
	return min(max(n, g.MinOccurs, 1), maxInstances(g))
}

// hasPrefix reports whether any posted field lies within prefix (an
// instance: "meds[2]/"), so a new instance can be drawn with the form's
// initial values.
func (st formState) hasPrefix(prefix string) bool {
	for key := range st.values {
		key = strings.TrimPrefix(strings.TrimPrefix(key, "unit:"), countPrefix)
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// instanceOf reads a field name within an instance of the repeating group
// named group: for "meds[2]/dose" and "meds" it gives 2 and "/dose".
func instanceOf(key, group string) (n int, rest string, ok bool) {
	tail, found := strings.CutPrefix(key, group+"[")
	if !found {
		return 0, "", false
	}
	num, rest, found := strings.Cut(tail, "]")
	if !found || (rest != "" && !strings.HasPrefix(rest, "/")) || len(num) > 4 {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || strconv.Itoa(n) != num {
		return 0, "", false
	}
	return n, rest, true
}

// applyRepeatAction adds an instance to a repeating group, or removes one
// (renumbering the fields of those after it), in the posted values. An
// action that names no repeating group of the form changes nothing.
func applyRepeatAction(q *forms.Questionnaire, values url.Values, action string) {
	st := formState{values: values}
	if field, ok := strings.CutPrefix(action, "add:"); ok {
		if g := groupField(q, field); g != nil {
			n := st.instanceCount(field, g)
			values.Set(countPrefix+field, strconv.Itoa(min(n+1, maxInstances(g))))
		}
		return
	}
	inst, ok := strings.CutPrefix(action, "remove:")
	open := strings.LastIndexByte(inst, '[')
	if !ok || open < 0 {
		return
	}
	field := inst[:open]
	g := groupField(q, field)
	k, rest, ok := instanceOf(inst, field)
	if g == nil || !ok || rest != "" {
		return
	}
	n := st.instanceCount(field, g)
	if k > n || n <= 1 {
		return
	}
	renamed := url.Values{}
	for key, vals := range values {
		prefix := ""
		base := key
		for _, p := range []string{"unit:", countPrefix} {
			if b, ok := strings.CutPrefix(key, p); ok {
				prefix, base = p, b
			}
		}
		i, rest, ok := instanceOf(base, field)
		switch {
		case !ok:
			renamed[key] = vals
		case i == k:
			// dropped with its instance
		case i > k:
			renamed[prefix+field+"["+strconv.Itoa(i-1)+"]"+rest] = vals
		default:
			renamed[key] = vals
		}
	}
	clear(values)
	for key, vals := range renamed {
		values[key] = vals
	}
	values.Set(countPrefix+field, strconv.Itoa(n-1))
}

// groupField returns the repeating group a field name stands for ("meds",
// or "visits[1]/meds" within an instance), or nil.
func groupField(q *forms.Questionnaire, field string) *forms.Item {
	path, leaf := splitField(q, field)
	g := q.Item(leaf)
	if g == nil || !g.HasInstances() || !inScope(g, path) {
		return nil
	}
	return g
}

// instanceRef is one step of a field name into an instance: group linkId
// and instance number.
type instanceRef struct {
	group string
	n     int
}

// splitField splits a field name into the instances it lies in and the
// linkId: "visits[1]/meds[2]/dose" gives [{visits 1} {meds 2}] and "dose".
// A step counts only when it names a repeating group of the form, so a
// linkId that merely contains "[1]/" stays whole.
func splitField(q *forms.Questionnaire, name string) ([]instanceRef, string) {
	var path []instanceRef
	rest := name
	for {
		open := strings.IndexByte(rest, '[')
		if open < 0 {
			return path, rest
		}
		matched := false
		for open >= 0 {
			g := q.Item(rest[:open])
			if g != nil && g.HasInstances() {
				if n, tail, ok := instanceOf(rest, rest[:open]); ok && strings.HasPrefix(tail, "/") && n <= maxShownInstances {
					path = append(path, instanceRef{group: rest[:open], n: n})
					rest = tail[1:]
					matched = true
					break
				}
			}
			next := strings.IndexByte(rest[open+1:], '[')
			if next < 0 {
				break
			}
			open += 1 + next
		}
		if !matched {
			return path, rest
		}
	}
}

// inScope reports whether an item sits exactly in the instances path names.
func inScope(it *forms.Item, path []instanceRef) bool {
	s := it.Scope()
	for i := len(path) - 1; i >= 0; i-- {
		if s == nil || s.LinkID != path[i].group {
			return false
		}
		s = s.Scope()
	}
	return s == nil
}

func allItems(items []*forms.Item) []*forms.Item {
	var out []*forms.Item
	for _, it := range items {
		out = append(out, it)
		out = append(out, allItems(it.Items)...)
	}
	return out
}

// isHint reports whether a display child of a question is drawn as the
// question's hint (it has text and no conditions of its own).
func isHint(parent, child *forms.Item) bool {
	return strings.TrimSpace(child.Text) != "" && len(child.EnableWhen) == 0 && slices.Contains(parent.Hints, strings.TrimSpace(child.Text))
}

// itemLabel is the label a person sees in lang: prefix and text, never
// empty for a question.
func itemLabel(it *forms.Item, lang language.Tag) string {
	label, prefix := it.LabelIn(lang), it.PrefixIn(lang)
	if prefix != "" && label != "" {
		return prefix + " " + label
	}
	return label
}

// unitLabel is how a unit is shown.
func unitLabel(u forms.Coding) string {
	if u.Display != "" {
		return u.Display
	}
	return u.Code
}

// UnitField is the form field of a quantity item's unit.
func unitField(linkID string) string { return "unit:" + linkID }

// itemView draws one item under its field name (the linkId, or within an
// instance the instance's prefix and the linkId) and id; fresh says the
// patient has not filled in this part of the form yet, so initial values
// are shown.
func (s *Server) itemView(pr *locale.Printer, q *forms.Questionnaire, it *forms.Item, name, id string, st formState, fresh bool) *itemView {
	lang := pr.Lang()
	v := &itemView{
		ID: id, Name: name, Label: itemLabel(it, lang), Required: it.Required && applies(st, name),
		Error: pr.Sprint(st.errors[name]), target: id,
		Hint: enableWhenHint(pr, q, it),
	}
	hints := it.HintsIn(lang)
	for i := len(hints) - 1; i >= 0; i-- {
		v.Hint = joinHints(hints[i], v.Hint)
	}
	if it.EntryFormat != "" {
		v.Hint = joinHints(pr.T("intake.hint.format", it.EntryFormatIn(lang)), v.Hint)
	}
	values := st.values[name]
	if fresh && len(it.Initial) > 0 {
		// First view: the form's initial values.
		for _, iv := range it.Initial {
			values = append(values, initialKey(iv))
		}
	}
	first := ""
	if len(values) > 0 {
		first = values[0]
	}
	if it.Answerable() && !it.PatientAnswers() {
		v.Kind = "readonly"
		switch {
		case it.Calculated != nil:
			v.Value = pr.T("intake.readonly.calculated")
		case len(it.Initial) > 0:
			var parts []string
			for _, iv := range it.Initial {
				parts = append(parts, valueText(pr, it, iv))
			}
			v.Value = strings.Join(parts, "; ")
		default:
			v.Value = pr.T("intake.readonly.none")
		}
		return v
	}
	if len(it.Options) > 0 && it.Type != forms.TypeOpenChoice {
		s.choiceView(pr, v, it, id, values)
		return v
	}
	switch it.Type {
	case forms.TypeGroup:
		v.Kind = "group"
	case forms.TypeDisplay:
		v.Kind = "display"
	case forms.TypeQuantity:
		v.Kind, v.InputType, v.Value, v.InputMode, v.Short = "quantity", "text", first, "decimal", true
		v.Hint = joinHints(rangeHint(pr, it, "decimal"), v.Hint)
		unitValue := ""
		if u := st.values[unitField(name)]; len(u) > 0 {
			unitValue = u[0]
		} else if len(it.Initial) > 0 && it.Initial[0].ValueQuantity != nil {
			unitValue = it.Initial[0].ValueQuantity.Code
		}
		switch len(it.Units) {
		case 0:
		case 1:
			v.Unit = unitLabel(it.Units[0])
		default:
			v.UnitName, v.UnitLabel = unitField(name), pr.T("intake.unit_of", strings.TrimRight(v.Label, " :?"))
			for i, u := range it.Units {
				key := u.Code
				if key == "" {
					key = u.Display
				}
				v.Options = append(v.Options, optionView{ID: fmt.Sprintf("%s-unit-%d", id, i+1), Value: key, Label: unitLabel(u), Checked: unitValue == key})
			}
		}
	case forms.TypeString, forms.TypeInteger, forms.TypeDecimal, forms.TypeDate, forms.TypeDateTime, forms.TypeTime, forms.TypeURL, forms.TypeReference,
		forms.TypeChoice: // a choice without options (those are drawn as choices) takes free text
		v.Kind, v.InputType, v.Value = "input", "text", first
		v.MaxLength = it.EffectiveMaxLength()
		v.Autocomplete = autocomplete(it)
		switch it.Type {
		case forms.TypeInteger:
			v.InputMode, v.Short = "numeric", true
			v.Hint = joinHints(rangeHint(pr, it, "integer"), v.Hint)
		case forms.TypeDecimal:
			v.InputMode, v.Short = "decimal", true
			v.Hint = joinHints(rangeHint(pr, it, "decimal"), v.Hint)
		case forms.TypeDate:
			// A text box, not type=date: a browser's date picker drops a
			// value it cannot parse, so it could not be shown again.
			v.InputMode, v.Short = "numeric", true
			v.Hint = joinHints(pr.T("intake.hint.date"), v.Hint)
		case forms.TypeDateTime:
			v.Hint = joinHints(pr.T("intake.hint.datetime"), v.Hint)
		case forms.TypeTime:
			// A text box, not type=time, for the reason dates are one.
			v.Short = true
			v.Hint = joinHints(pr.T("intake.hint.time"), v.Hint)
		case forms.TypeURL:
			v.InputType, v.InputMode = "url", "url"
			v.Hint = joinHints(pr.T("intake.hint.url"), v.Hint)
		case forms.TypeReference:
			// Without options (those are drawn as choices): the patient
			// describes the record (a name and a place), never a record id.
			v.Hint = joinHints(pr.T("intake.hint.reference"), v.Hint)
		}
		if (it.Type == forms.TypeInteger || it.Type == forms.TypeDecimal) && len(it.Units) > 0 {
			v.Unit = unitLabel(it.Units[0])
		}
		if it.LinkID == "email" {
			v.InputType = "email"
		} else if it.LinkID == "phone" {
			v.InputType = "tel"
		}
		if it.Repeats {
			v.Kind = "repeat"
			for i := range repeatInputs {
				r := repeatView{ID: fmt.Sprintf("%s-%d", id, i+1), Name: name, Label: pr.T("intake.repeat_label", v.Label, i+1), MaxLength: v.MaxLength}
				if i < len(values) {
					r.Value = values[i]
				}
				v.Repeats = append(v.Repeats, r)
			}
			v.target = id + "-1"
		}
	case forms.TypeText:
		v.Kind, v.Value, v.MaxLength = "textarea", first, it.EffectiveMaxLength()
		v.Autocomplete = autocomplete(it)
	case forms.TypeBoolean:
		if it.MustBeTrue {
			v.Kind, v.Checked = "checkbox", first == "true"
			break
		}
		v.Kind, v.InputType, v.Inline = "choices", "radio", true
		for i, o := range [][2]string{{"true", pr.T("forms.yes")}, {"false", pr.T("forms.no")}} {
			v.Options = append(v.Options, optionView{ID: fmt.Sprintf("%s-%d", id, i+1), Value: o[0], Label: o[1], Checked: first == o[0]})
		}
		v.target = id + "-1"
	case forms.TypeOpenChoice:
		v.Kind, v.InputType, v.Value, v.List = "input", "text", first, true
		v.MaxLength = it.EffectiveMaxLength()
		for _, o := range it.Options {
			// The suggestion is the label itself: picked, it fills the box
			// with words the patient reads, mapped back to the option when
			// sent (formValueJSON).
			v.Options = append(v.Options, optionView{Value: o.LabelIn(lang)})
		}
		v.Hint = joinHints(pr.T("intake.hint.open_choice"), v.Hint)
	case forms.TypeAttachment:
		v.Kind, v.Multiple = "file", it.Repeats
		v.Accept = s.acceptAttr()
		v.Hint = joinHints(s.attachmentHint(pr), v.Hint)
	}
	return v
}

// choiceView draws an item with options: checkboxes when it repeats (or
// itemControl check-box), a drop-down for long lists (or itemControl
// drop-down), radio buttons otherwise (or itemControl radio-button).
func (s *Server) choiceView(pr *locale.Printer, v *itemView, it *forms.Item, id string, values []string) {
	for i, o := range it.Options {
		v.Options = append(v.Options, optionView{ID: fmt.Sprintf("%s-%d", id, i+1), Value: o.Key(), Label: o.LabelIn(pr.Lang()), Checked: slices.Contains(values, o.Key())})
	}
	switch {
	case it.Repeats:
		v.Kind, v.InputType, v.target = "choices", "checkbox", id+"-1"
	case it.Control == "drop-down", it.Control != "radio-button" && len(it.Options) > maxRadioOptions:
		v.Kind = "select"
	default:
		v.Kind, v.InputType, v.target = "choices", "radio", id+"-1"
	}
}

// valueText is a value the form gives (a read-only item's initial value)
// as the reader sees it: an option by its label in the page's language, a
// boolean as Yes or No.
func valueText(pr *locale.Printer, it *forms.Item, v forms.Value) string {
	key := initialKey(v)
	switch {
	case v.ValueBoolean != nil && *v.ValueBoolean:
		return pr.T("forms.yes")
	case v.ValueBoolean != nil:
		return pr.T("forms.no")
	}
	for _, o := range it.Options {
		if (v.ValueCoding != nil || v.ValueReference != nil) && o.Key() == key || v.ValueString != nil && o.String == *v.ValueString {
			return o.LabelIn(pr.Lang())
		}
	}
	return v.String()
}

// initialKey is an initial value as the form field holds it.
func initialKey(v forms.Value) string {
	switch {
	case v.ValueCoding != nil:
		return v.ValueCoding.Code
	case v.ValueReference != nil && v.ValueReference.Reference != "":
		return v.ValueReference.Reference
	case v.ValueBoolean != nil:
		return strconv.FormatBool(*v.ValueBoolean)
	case v.ValueQuantity != nil:
		return v.ValueQuantity.Value.String()
	}
	return v.String()
}

// acceptAttr lists the allowed types for the file picker (a convenience:
// the server checks the content).
func (s *Server) acceptAttr() string {
	ext := map[string]string{"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg,.jpeg", "text/plain": ".txt"}
	var out []string
	for _, t := range s.attachments.allowed {
		out = append(out, t)
		if e := ext[t]; e != "" {
			out = append(out, e)
		}
	}
	return strings.Join(out, ",")
}

func (s *Server) attachmentHint(pr *locale.Printer) string {
	return pr.T("intake.hint.attachment", s.attachments.typeList(pr), formatSize(s.attachments.maxSize))
}

func joinHints(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + " " + b
}

// rangeHints are the keys of the hints saying which numbers an integer or
// decimal item takes: from-to, at least, at most.
var rangeHints = map[string][3]string{
	"integer": {"intake.hint.range.integer", "intake.hint.min.integer", "intake.hint.max.integer"},
	"decimal": {"intake.hint.range.decimal", "intake.hint.min.decimal", "intake.hint.max.decimal"},
}

// rangeHint says which numbers an integer or decimal item takes (kind is
// "integer" or "decimal").
func rangeHint(pr *locale.Printer, it *forms.Item, kind string) string {
	f := func(p *float64) string { return strconv.FormatFloat(*p, 'f', -1, 64) }
	keys := rangeHints[kind]
	switch {
	case it.MinValue != nil && it.MaxValue != nil:
		return pr.T(keys[0], f(it.MinValue), f(it.MaxValue))
	case it.MinValue != nil:
		return pr.T(keys[1], f(it.MinValue))
	case it.MaxValue != nil:
		return pr.T(keys[2], f(it.MaxValue))
	}
	return ""
}

// enableWhenHint says in words when a conditional question applies: without
// JavaScript every question is shown; an answer to one that does not apply
// is a field error naming the answer it depends on.
func enableWhenHint(pr *locale.Printer, q *forms.Questionnaire, it *forms.Item) string {
	cond, ok := q.EnableCondition(it)
	if !ok {
		return ""
	}
	return pr.T("intake.hint.applies_if", cond)
}

func (s *Server) formPage(c echo.Context, pr *locale.Printer, q *forms.Questionnaire, st formState, notice string) formPage {
	cookie := s.csrf.cookieValue(c.Response(), c.Request())
	lang := pr.Lang()
	p := formPage{
		page:          s.newPage(pr, q.TitleIn(lang), s.formLanguages(q), "/forms/"+q.ID),
		Description:   q.DescriptionIn(lang),
		Action:        withLang("/forms/"+q.ID, pr),
		Enctype:       "application/x-www-form-urlencoded",
		CSRF:          s.csrf.token(cookie),
		CSRFField:     csrfField,
		HoneypotField: honeypotField,
		Notice:        notice,
		Items:         s.buildForm(pr, q, st),
	}
	for _, it := range q.Questions() {
		if it.Type == forms.TypeAttachment {
			p.Enctype = "multipart/form-data"
		}
	}
	// The summary follows the order of the page.
	shown := map[string]bool{}
	var walk func(vs []*itemView)
	walk = func(vs []*itemView) {
		for _, v := range vs {
			shown[v.Name] = true
			if v.Error != "" {
				p.Errors = append(p.Errors, errorLink{Target: v.target, Text: pr.T("intake.summary.item", strings.TrimRight(v.Label, ".:"), v.Error)})
			}
			walk(v.Children)
			for _, iv := range v.Instances {
				walk(iv.Children)
			}
			if v.Kind == "repeat-group" {
				p.HasRepeats = true
			}
		}
	}
	walk(p.Items)
	for field := range st.errors {
		if field != "" && !shown[field] && field != correctsReceiptField && field != correctsCodeField {
			// Errors for fields not on the page (a tampered request)
			// still need a line in the summary.
			st.errors[""] = locale.New("intake.error.unknown_fields")
		}
	}
	p.Corrects = correctsView{ReceiptField: correctsReceiptField, CodeField: correctsCodeField, Receipt: st.correctsReceipt,
		ReceiptError: pr.Sprint(st.errors[correctsReceiptField]), CodeError: pr.Sprint(st.errors[correctsCodeField])}
	p.Corrects.Open = p.Corrects.Receipt != "" || p.Corrects.ReceiptError != "" || p.Corrects.CodeError != ""
	if m := p.Corrects.ReceiptError; m != "" {
		p.Errors = append(p.Errors, errorLink{Target: "corrects-receipt", Text: pr.T("intake.summary.item", pr.T("intake.corrects.receipt_summary"), m)})
	}
	if m := p.Corrects.CodeError; m != "" {
		p.Errors = append(p.Errors, errorLink{Target: "corrects-code", Text: pr.T("intake.summary.item", pr.T("intake.corrects.code_summary"), m)})
	}
	if msg := st.errors[""]; !msg.IsZero() {
		p.Errors = append(p.Errors, errorLink{Target: "q-1", Text: pr.Sprint(msg)})
	}
	p.HasErrors = len(p.Errors) > 0 || notice != ""
	if len(p.Languages) > 0 {
		p.SwitchForm, p.SwitchField = "intake-form", langSwitchField
	}
	return p
}

// handleFormPage serves the HTML form.
func (s *Server) handleFormPage(c echo.Context) error {
	q, err := s.form(c)
	if err != nil {
		return err
	}
	pr := s.printerFor(c, s.formLanguages(q))
	// A new form starts a new visit: a receipt still held from the last
	// one (someone sent this form and walked away) is forgotten, so the
	// next person at this browser cannot open it.
	s.forgetReceipt(c)
	return s.render(c, http.StatusOK, "form", s.formPage(c, pr, q, formState{}, ""))
}

// errCSRF is the 403 for a missing or wrong CSRF token; the page that
// explains it is written by errorPage.
var errCSRF = echo.NewHTTPError(http.StatusForbidden, "CSRF check failed")

// handleFormSubmit takes an HTML form submission: CSRF check, honeypot,
// validation (422 with the form again), sealing, and the receipt page.
func (s *Server) handleFormSubmit(c echo.Context) error {
	q, err := s.form(c)
	if err != nil {
		return err
	}
	pr := s.printerFor(c, s.formLanguages(q))
	req := c.Request()
	mt, params, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if err != nil {
		mt = ""
	}
	var values url.Values
	var files map[string][]upload
	switch mt {
	case "application/x-www-form-urlencoded":
		values, err = readURLEncoded(req.Body)
	case "multipart/form-data":
		values, files, err = s.readMultipart(req.Body, params["boundary"])
	default:
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "This form must be sent from its web page.")
	}
	if err != nil {
		return err
	}
	tok, ok := s.csrf.check(req, values.Get(csrfField))
	if !ok {
		s.metrics.csrf.Inc()
		return errCSRF
	}
	st := formState{values: values, errors: map[string]locale.Message{}}
	delete(values, csrfField)
	if values.Get(honeypotField) != "" {
		// Probably a bot: store nothing. A person whose browser filled the
		// hidden field by mistake sees their answers again and can resend.
		s.metrics.honeypot.WithLabelValues(q.ID).Inc()
		delete(values, honeypotField)
		return s.render(c, http.StatusUnprocessableEntity, "form", s.formPage(c, pr, q, st, pr.T("intake.notice.automated")))
	}
	delete(values, honeypotField)

	if values.Has(langSwitchField) {
		// The language switch: the same form in the language the
		// button's formaction names (?lang=), with everything typed kept;
		// nothing is checked or stored.
		delete(values, langSwitchField)
		st.correctsReceipt, _, _ = takeFormCorrection(values)
		notice := ""
		if len(files) > 0 {
			notice = pr.T("intake.notice.files_redraw")
		}
		return s.render(c, http.StatusOK, "form", s.formPage(c, pr, q, st, notice))
	}
	if action := values.Get(repeatActionField); action != "" {
		// "Add another" or "Remove" on a repeating group: draw the form
		// again with what was typed, one instance more or less; nothing is
		// checked or stored yet.
		delete(values, repeatActionField)
		applyRepeatAction(q, values, action)
		st.correctsReceipt, _, _ = takeFormCorrection(values)
		notice := ""
		if len(files) > 0 {
			notice = pr.T("intake.notice.files_redraw")
		}
		return s.render(c, http.StatusOK, "form", s.formPage(c, pr, q, st, notice))
	}

	var corrects *seal.Correction
	var cerrs forms.FieldErrors
	st.correctsReceipt, corrects, cerrs = takeFormCorrection(values)
	raw, fileErrs := s.htmlAnswers(q, values, files)
	fileErrs = append(fileErrs, cerrs...)
	// An answer to a question that does not apply is an error like any
	// other (FHIR says such answers must not be present): the message says
	// which answer it depends on, and nothing is dropped silently.
	answers, ferrs := q.Validate(raw)
	if len(ferrs) == 0 && len(fileErrs) == 0 {
		ferrs = s.attachments.apply(q, answers)
	}
	if len(ferrs) > 0 || len(fileErrs) > 0 {
		for _, fe := range append(fileErrs, ferrs...) {
			if _, seen := st.errors[fe.Field]; !seen {
				st.errors[fe.Field] = fe.Message
			}
		}
		notice := ""
		if len(files) > 0 {
			notice = pr.T("intake.notice.files_again")
		}
		return s.render(c, http.StatusUnprocessableEntity, "form", s.formPage(c, pr, q, st, notice))
	}
	// Each rendered form stores at most one submission (replay.go): a
	// repeat of this post derives the same receipt and stores nothing.
	replayKey := s.replay.formReplayKey(q.ID, tok)
	issued, err := s.accept(req.Context(), q, answers, corrects, replayKey)
	if errors.Is(err, ErrReplayKeyUsed) {
		// This rendered form was sent before with other answers (Back,
		// change, send; or a retry after a lost answer, with a typo fixed).
		// Nothing is stored and nothing is lost: the form comes back with
		// these answers, a fresh token and a notice saying the first
		// sending stands, that a change goes as a correction, and that
		// sending this page again makes a new, separate submission.
		return s.render(c, http.StatusUnprocessableEntity, "form", s.formPage(c, pr, q, st, pr.T("intake.notice.sent_twice")))
	}
	if err != nil {
		return err
	}
	// Post/redirect/get: the receipt travels in a sealed cookie, so a
	// reload shows it again and sends nothing, and no URL carries it.
	s.receipts.set(c.Response(), receiptTicket{
		Form: q.ID, Receipt: issued.Receipt, Code: issued.CorrectionCode, Corrects: corrects != nil,
		Expires: time.Now().Add(receiptCookieTTL).Unix(),
	})
	return c.Redirect(http.StatusSeeOther, withLang(receiptPath(q), pr))
}

// receiptPath is where a sent form's receipt is shown.
func receiptPath(q *forms.Questionnaire) string { return "/forms/" + url.PathEscape(q.ID) + "/sent" }

// receiptPage is the page that shows a receipt and its correction code.
type receiptPage struct {
	page
	Receipt, CorrectionCode string
	Corrects                bool
	Minutes                 int
	Action                  string
	CSRF, CSRFField         string
}

// handleReceiptPage shows the receipt of the form this browser sent last,
// from the sealed receipt cookie, for receiptCookieTTL after sending.
func (s *Server) handleReceiptPage(c echo.Context) error {
	q, err := s.form(c)
	if err != nil {
		return err
	}
	pr := s.printerFor(c, s.formLanguages(q))
	t, ok := s.receipts.get(c.Request(), time.Now())
	if !ok || t.Form != q.ID {
		return s.render(c, http.StatusNotFound, "error", errorPage{
			page:    s.newPage(pr, pr.T("intake.no_receipt.title"), nil, ""),
			Message: pr.T("intake.no_receipt", int(receiptCookieTTL/time.Minute)),
			Back:    withLang("/", pr), BackText: pr.T("intake.error.back_list"),
		})
	}
	cookie := s.csrf.cookieValue(c.Response(), c.Request())
	return s.render(c, http.StatusOK, "receipt", receiptPage{
		page:    s.newPage(pr, pr.T("intake.receipt.title"), nil, ""),
		Receipt: t.Receipt, CorrectionCode: t.Code, Corrects: t.Corrects,
		Minutes: int(receiptCookieTTL / time.Minute),
		Action:  receiptPath(q), CSRF: s.csrf.token(cookie), CSRFField: csrfField,
	})
}

// handleReceiptDone forgets the receipt at once ("Done"), so the next
// person at a shared device cannot open it.
func (s *Server) handleReceiptDone(c echo.Context) error {
	if _, err := s.form(c); err != nil {
		return err
	}
	if _, ok := s.csrf.check(c.Request(), c.Request().FormValue(csrfField)); !ok {
		s.metrics.csrf.Inc()
		return errCSRF
	}
	s.receipts.clear(c.Response())
	return c.Redirect(http.StatusSeeOther, "/")
}

// upload is one file from a multipart submission.
type upload struct {
	name string
	data []byte
}

func readURLEncoded(body io.Reader) (url.Values, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, err // a *http.MaxBytesError becomes 413
	}
	v, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, echo.NewHTTPError(http.StatusBadRequest, "The form data could not be read.")
	}
	return v, nil
}

// readMultipart reads a multipart body into memory: files are never written
// to disk, where they would lie unencrypted. A file over the per-file limit
// is read no further than the limit and reported by its field.
func (s *Server) readMultipart(body io.Reader, boundary string) (url.Values, map[string][]upload, error) {
	bad := echo.NewHTTPError(http.StatusBadRequest, "The form data could not be read.")
	if boundary == "" {
		return nil, nil, bad
	}
	mr := multipart.NewReader(body, boundary)
	values := url.Values{}
	files := map[string][]upload{}
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if tooLarge(err) {
				return nil, nil, err
			}
			return nil, nil, bad
		}
		if n == maxFormParts {
			return nil, nil, bad
		}
		name := part.FormName()
		if name == "" {
			part.Close()
			continue
		}
		limit := s.maxBody
		if part.FileName() != "" {
			limit = s.attachments.maxSize
		}
		data, err := io.ReadAll(io.LimitReader(part, limit+1))
		if err != nil {
			if tooLarge(err) {
				return nil, nil, err
			}
			return nil, nil, bad
		}
		if int64(len(data)) > limit {
			// Keep reading to the end, so an oversized body is still 413.
			if _, err := io.Copy(io.Discard, part); err != nil && tooLarge(err) {
				return nil, nil, err
			}
			data = nil
			if part.FileName() == "" {
				return nil, nil, bad
			}
			files[name] = append(files[name], upload{name: part.FileName(), data: nil})
			part.Close()
			continue
		}
		if part.FileName() != "" {
			if len(data) > 0 {
				files[name] = append(files[name], upload{name: part.FileName(), data: data})
			}
		} else {
			values.Add(name, string(data))
		}
		part.Close()
	}
	return values, files, nil
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// htmlAnswers turns form fields and files into the raw JSON answers
// Validate takes, fields within an instance of a repeating group
// ("meds[2]/dose") into that instance's object. File problems (too large,
// type not allowed) come back as field errors of their own.
func (s *Server) htmlAnswers(q *forms.Questionnaire, values url.Values, files map[string][]upload) (map[string]json.RawMessage, forms.FieldErrors) {
	top := newRawNode()
	for name, vals := range values {
		if strings.HasPrefix(name, countPrefix) {
			continue // how many instances the page showed
		}
		if base, ok := strings.CutPrefix(name, "unit:"); ok {
			if _, leaf := splitField(q, base); q.Item(leaf) != nil && q.Item(leaf).Type == forms.TypeQuantity {
				continue // read with its quantity
			}
		}
		path, leaf := splitField(q, name)
		node := top.at(path)
		it := q.Item(leaf)
		if it != nil && it.Type == forms.TypeQuantity {
			if v := strings.TrimSpace(strings.Join(vals, "")); v != "" {
				node.vals[leaf] = quantityJSON(it, v, values.Get(unitField(name)))
			}
			continue
		}
		var conv []json.RawMessage
		for _, v := range vals {
			if strings.TrimSpace(v) == "" {
				continue
			}
			conv = append(conv, formValueJSON(it, v))
		}
		switch {
		case len(conv) == 0:
			if it == nil {
				node.vals[leaf] = json.RawMessage(`""`)
			}
		case len(conv) == 1 && (it == nil || !it.Repeats || ownAnswer(path, leaf)):
			node.vals[leaf] = conv[0]
		default:
			b, _ := json.Marshal(conv)
			node.vals[leaf] = b
		}
	}
	var errs forms.FieldErrors
	for name, ups := range files {
		var conv []json.RawMessage
		for i, up := range ups {
			if up.data == nil {
				errs = append(errs, forms.FieldError{Field: name, Message: s.attachments.tooLargeMessage()})
				break
			}
			ct, msg := s.attachments.check(up.data)
			if !msg.IsZero() {
				if len(ups) > 1 {
					msg = locale.New("intake.attachment.file_n", i+1, msg)
				}
				errs = append(errs, forms.FieldError{Field: name, Message: msg})
				break
			}
			b, _ := json.Marshal(map[string]string{
				"contentType": ct,
				"data":        base64.StdEncoding.EncodeToString(up.data),
				"title":       cleanFileName(up.name),
			})
			conv = append(conv, b)
		}
		path, leaf := splitField(q, name)
		node := top.at(path)
		switch {
		case len(conv) == 0:
		case len(conv) == 1:
			node.vals[leaf] = conv[0]
		default:
			b, _ := json.Marshal(conv)
			node.vals[leaf] = b
		}
	}
	return top.encode(q), errs
}

// ownAnswer reports whether a field is a repeating question's own answer in
// one of its instances ("q[2]/q"): one answer, not a list.
func ownAnswer(path []instanceRef, leaf string) bool {
	return len(path) > 0 && path[len(path)-1].group == leaf
}

// rawNode gathers the raw answers of the top level or of one instance of a
// repeating group: answers by linkId, and the instances of each group by
// their number on the page.
type rawNode struct {
	vals  map[string]json.RawMessage
	insts map[string]map[int]*rawNode
}

func newRawNode() *rawNode {
	return &rawNode{vals: map[string]json.RawMessage{}, insts: map[string]map[int]*rawNode{}}
}

// at is the node of the instance path names, made when missing.
func (n *rawNode) at(path []instanceRef) *rawNode {
	for _, ref := range path {
		if n.insts[ref.group] == nil {
			n.insts[ref.group] = map[int]*rawNode{}
		}
		next := n.insts[ref.group][ref.n]
		if next == nil {
			next = newRawNode()
			n.insts[ref.group][ref.n] = next
		}
		n = next
	}
	return n
}

// encode is the node as Validate takes it: each repeating group an array
// of instance objects, numbered as on the page (an instance the page left
// blank is an empty object, so errors name the instance the patient saw).
//
// An instance of a repeating question (one answer, with the questions under
// it) is {"answer": its own field "q[n]/q", "item": {...}}, or null when
// the page left it blank.
func (n *rawNode) encode(q *forms.Questionnaire) map[string]json.RawMessage {
	raw := n.vals
	for group, insts := range n.insts {
		last := 0
		for i := range insts {
			last = max(last, i)
		}
		question := false
		if it := q.Item(group); it != nil && it.Answerable() {
			question = true
		}
		list := make([]any, last)
		for i := range list {
			inst := insts[i+1]
			switch {
			case question:
				list[i] = nil
				if inst == nil {
					continue
				}
				own, answered := inst.vals[group]
				delete(inst.vals, group)
				items := inst.encode(q)
				switch {
				case answered:
					list[i] = map[string]any{"answer": own, "item": items}
				case len(items) > 0:
					list[i] = map[string]any{"item": items} // refused: no answer
				}
			case inst == nil:
				list[i] = map[string]json.RawMessage{}
			default:
				list[i] = inst.encode(q)
			}
		}
		raw[group], _ = json.Marshal(list)
	}
	return raw
}

// formValueJSON converts one form field to the JSON value Validate expects
// for the item's type. A value that cannot be converted is passed as a
// string, so Validate reports the type error by the field's name.
func formValueJSON(it *forms.Item, v string) json.RawMessage {
	str := func() json.RawMessage { b, _ := json.Marshal(v); return b }
	if it == nil {
		return str()
	}
	t := strings.TrimSpace(v)
	switch it.Type {
	case forms.TypeOpenChoice:
		// The suggestions are the options' labels in the page's language:
		// a picked one is stored as its option, not as free text.
		if o, ok := it.OptionByLabel(t); ok {
			b, _ := json.Marshal(o.Key())
			return b
		}
	case forms.TypeInteger, forms.TypeDecimal:
		if len(it.Options) > 0 && it.Type == forms.TypeInteger {
			if n, err := strconv.ParseInt(t, 10, 64); err == nil {
				return json.RawMessage(strconv.FormatInt(n, 10))
			}
		}
		if it.Type == forms.TypeDecimal && strings.Count(t, ",") == 1 && !strings.Contains(t, ".") {
			t = strings.Replace(t, ",", ".", 1) // a decimal comma
		}
		if n := strings.TrimPrefix(t, "+"); isNumber(n) {
			return json.RawMessage(n)
		}
	case forms.TypeBoolean:
		if t == "true" || t == "false" {
			return json.RawMessage(t)
		}
	}
	return str()
}

// quantityJSON is a quantity field (and its unit field) as the JSON
// Validate takes: a number, or {"value": n, "code": unit}.
func quantityJSON(it *forms.Item, v, unit string) json.RawMessage {
	t := strings.TrimPrefix(strings.TrimSpace(v), "+")
	if strings.Count(t, ",") == 1 && !strings.Contains(t, ".") {
		t = strings.Replace(t, ",", ".", 1)
	}
	if !isNumber(t) {
		b, _ := json.Marshal(v)
		return b
	}
	if unit = strings.TrimSpace(unit); unit == "" || len(it.Units) < 2 {
		return json.RawMessage(t)
	}
	b, _ := json.Marshal(map[string]any{"value": json.Number(t), "code": unit})
	return b
}

// isNumber accepts a plain decimal number as JSON writes it.
func isNumber(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	var v any
	return json.Unmarshal([]byte(s), &v) == nil && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == '-' || r == '.' || r == 'e' || r == 'E' || r == '+')
	}) < 0
}

// cleanFileName keeps a file name fit to store as the attachment's title:
// no directories, no control characters, at most 255 characters.
func cleanFileName(name string) string {
	name = path.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 255 {
		name = string([]rune(name)[:255])
	}
	if name == "." || name == "/" {
		return ""
	}
	return name
}
