package forms

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file implements the subset of FHIRPath that scoring forms use, for
// SDC calculatedExpression and variable extensions. Expressions are parsed
// when the form loads; anything outside the subset is refused there, with
// the construct named, so a form never loads with a score that would not be
// computed.
//
// Supported: literals (boolean, string, integer, decimal, {}), %resource,
// %questionnaire, %context, %variables declared with the variable extension,
// $this, paths (.name, with FHIR choice names such as value / valueCoding),
// indexers [n], unary minus, * / div mod + - &, | (union), = != < > <= >=,
// and or xor implies, and the functions where, select, exists, empty, count,
// sum, first, last, single, not, all, allTrue, anyTrue, iif, repeat,
// children, descendants, distinct, hasValue, length, substring, toInteger,
// toDecimal, toString, round, abs, floor, ceiling, truncate, sqrt, power,
// ln, exp, log, union, combine, isDistinct, ordinal, weight, ofType, and
// today() (a date, as text YYYY-MM-DD like date answers: the UTC day the
// patient sent the form, see CalculateOn). Date and time literals and date
// arithmetic are not in the subset.

// Expression is a compiled FHIRPath expression.
type Expression struct {
	Source string
	root   *fpNode
}

// Variable is a named expression (the variable extension), visible to later
// expressions as %name.
type Variable struct {
	Name string
	Expr *Expression
}

var fpFunctions = map[string][2]int{ // name: min, max arguments
	"where": {1, 1}, "select": {1, 1}, "exists": {0, 1}, "empty": {0, 0}, "count": {0, 0},
	"sum": {0, 0}, "first": {0, 0}, "last": {0, 0}, "not": {0, 0}, "iif": {2, 3},
	"repeat": {1, 1}, "children": {0, 0}, "distinct": {0, 0}, "toInteger": {0, 0},
	"toDecimal": {0, 0}, "toString": {0, 0}, "round": {0, 1}, "abs": {0, 0}, "floor": {0, 0},
	"ceiling": {0, 0}, "truncate": {0, 0}, "sqrt": {0, 0}, "power": {1, 1}, "ordinal": {0, 0},
	"weight": {0, 0}, "ofType": {1, 1}, "single": {0, 0}, "all": {1, 1}, "allTrue": {0, 0},
	"anyTrue": {0, 0}, "hasValue": {0, 0}, "length": {0, 0}, "ln": {0, 0}, "exp": {0, 0}, "log": {1, 1},
	"union": {1, 1}, "combine": {1, 1}, "isDistinct": {0, 0},
	"descendants": {0, 0}, "today": {0, 0}, "substring": {1, 2},
}

type fpNode struct {
	op    string // "lit", "path", "var", "this", "call", "index", "neg", binary operator
	name  string
	lit   any
	args  []*fpNode
	left  *fpNode
	right *fpNode
}

func compileExpression(w wireExpression) (*Expression, error) {
	switch w.Language {
	case "text/fhirpath", "":
	default:
		return nil, fmt.Errorf("language %q is not supported (only text/fhirpath)", clip(w.Language))
	}
	if strings.TrimSpace(w.Expression) == "" {
		return nil, errors.New("empty expression")
	}
	root, err := parseFHIRPath(w.Expression)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", clip(w.Expression), err)
	}
	return &Expression{Source: w.Expression, root: root}, nil
}

// CompileFHIRPath compiles an expression in the supported subset.
func CompileFHIRPath(src string) (*Expression, error) {
	return compileExpression(wireExpression{Language: "text/fhirpath", Expression: src})
}

// --- lexer

type fpToken struct {
	kind string // "id", "str", "num", "op", "var", "eof", "date"
	text string
	pos  int
}

func lexFHIRPath(s string) ([]fpToken, error) {
	var out []fpToken
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '/' && i+1 < len(s) && s[i+1] == '/':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '\'':
			j := i + 1
			var b strings.Builder
			for ; j < len(s) && s[j] != '\''; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					switch s[j] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					default:
						b.WriteByte(s[j])
					}
					continue
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, fpToken{"str", b.String(), i})
			i = j + 1
		case c >= '0' && c <= '9':
			j := i
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			if j+1 < len(s) && s[j] == '.' && s[j+1] >= '0' && s[j+1] <= '9' {
				j++
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					j++
				}
			}
			if j < len(s) && (s[j] == '\'' || isIdentStart(rune(s[j]))) {
				return nil, fmt.Errorf("quantity literals are not supported (at %d)", i)
			}
			out = append(out, fpToken{"num", s[i:j], i})
			i = j
		case c == '%':
			j := i + 1
			if j < len(s) && s[j] == '`' {
				k := strings.IndexByte(s[j+1:], '`')
				if k < 0 {
					return nil, fmt.Errorf("unterminated name at %d", i)
				}
				out = append(out, fpToken{"var", s[j+1 : j+1+k], i})
				i = j + k + 2
				continue
			}
			for j < len(s) && isIdentPart(rune(s[j])) {
				j++
			}
			if j == i+1 {
				return nil, fmt.Errorf("bad %% at %d", i)
			}
			out = append(out, fpToken{"var", s[i+1 : j], i})
			i = j
		case c == '$':
			j := i + 1
			for j < len(s) && isIdentPart(rune(s[j])) {
				j++
			}
			name := s[i:j]
			if name != "$this" {
				return nil, fmt.Errorf("%s is not supported", name)
			}
			out = append(out, fpToken{"id", name, i})
			i = j
		case c == '@':
			return nil, fmt.Errorf("date and time literals are not supported (at %d)", i)
		case c == '`':
			k := strings.IndexByte(s[i+1:], '`')
			if k < 0 {
				return nil, fmt.Errorf("unterminated name at %d", i)
			}
			out = append(out, fpToken{"id", s[i+1 : i+1+k], i})
			i += k + 2
		case isIdentStart(rune(c)):
			j := i
			for j < len(s) && isIdentPart(rune(s[j])) {
				j++
			}
			out = append(out, fpToken{"id", s[i:j], i})
			i = j
		default:
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "<=", ">=", "!=", "!~":
				out = append(out, fpToken{"op", two, i})
				i += 2
				continue
			}
			if strings.IndexByte(".()[],+-*/&|=<>~{}", c) >= 0 {
				out = append(out, fpToken{"op", string(c), i})
				i++
				continue
			}
			return nil, fmt.Errorf("unexpected character %q at %d", c, i)
		}
	}
	return append(out, fpToken{"eof", "", len(s)}), nil
}

func isIdentStart(r rune) bool { return r == '_' || r < 128 && unicode.IsLetter(r) }
func isIdentPart(r rune) bool  { return isIdentStart(r) || r >= '0' && r <= '9' }

// --- parser (precedence climbing, FHIRPath's precedence table)

type fpParser struct {
	toks []fpToken
	pos  int
}

func parseFHIRPath(s string) (*fpNode, error) {
	toks, err := lexFHIRPath(s)
	if err != nil {
		return nil, err
	}
	p := &fpParser{toks: toks}
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != "eof" {
		return nil, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
	}
	return n, nil
}

func (p *fpParser) peek() fpToken { return p.toks[p.pos] }
func (p *fpParser) next() fpToken { t := p.toks[p.pos]; p.pos++; return t }

var fpPrecedence = map[string]int{
	"implies": 1, "or": 2, "xor": 2, "and": 3, "in": 4, "contains": 4,
	"=": 5, "!=": 5, "~": 5, "!~": 5, "<": 6, ">": 6, "<=": 6, ">=": 6,
	"|": 7, "is": 8, "as": 8, "+": 9, "-": 9, "&": 9, "*": 10, "/": 10, "div": 10, "mod": 10,
}

var fpUnsupportedOps = map[string]bool{"~": true, "!~": true, "is": true, "as": true, "in": true, "contains": true}

func (p *fpParser) binaryOp() (string, bool) {
	t := p.peek()
	if t.kind == "op" || t.kind == "id" {
		if _, ok := fpPrecedence[t.text]; ok {
			return t.text, true
		}
	}
	return "", false
}

func (p *fpParser) expr(minPrec int) (*fpNode, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.binaryOp()
		if !ok || fpPrecedence[op] < minPrec {
			return left, nil
		}
		t := p.next()
		if fpUnsupportedOps[op] {
			return nil, fmt.Errorf("operator %q is not supported (at %d)", op, t.pos)
		}
		right, err := p.expr(fpPrecedence[op] + 1)
		if err != nil {
			return nil, err
		}
		left = &fpNode{op: op, left: left, right: right}
	}
}

func (p *fpParser) unary() (*fpNode, error) {
	if t := p.peek(); t.kind == "op" && (t.text == "-" || t.text == "+") {
		p.next()
		n, err := p.unary()
		if err != nil {
			return nil, err
		}
		if t.text == "+" {
			return n, nil
		}
		return &fpNode{op: "neg", left: n}, nil
	}
	return p.postfix()
}

func (p *fpParser) postfix() (*fpNode, error) {
	n, err := p.term()
	if err != nil {
		return nil, err
	}
	for {
		t := p.peek()
		switch {
		case t.kind == "op" && t.text == ".":
			p.next()
			id := p.next()
			if id.kind != "id" {
				return nil, fmt.Errorf("expected a name after . at %d", id.pos)
			}
			inv, err := p.invocation(id)
			if err != nil {
				return nil, err
			}
			inv.left = n
			n = inv
		case t.kind == "op" && t.text == "[":
			p.next()
			idx, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			if c := p.next(); c.text != "]" {
				return nil, fmt.Errorf("expected ] at %d", c.pos)
			}
			n = &fpNode{op: "index", left: n, right: idx}
		default:
			return n, nil
		}
	}
}

// invocation is a member name or a function call; its left is the focus
// (nil for the input collection).
func (p *fpParser) invocation(id fpToken) (*fpNode, error) {
	if t := p.peek(); t.kind == "op" && t.text == "(" {
		p.next()
		lim, ok := fpFunctions[id.text]
		if !ok {
			return nil, fmt.Errorf("function %s() is not supported", id.text)
		}
		var args []*fpNode
		if t := p.peek(); !(t.kind == "op" && t.text == ")") {
			for {
				a, err := p.expr(0)
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if t := p.peek(); t.kind == "op" && t.text == "," {
					p.next()
					continue
				}
				break
			}
		}
		if c := p.next(); c.text != ")" {
			return nil, fmt.Errorf("expected ) at %d", c.pos)
		}
		if len(args) < lim[0] || len(args) > lim[1] {
			return nil, fmt.Errorf("%s() takes %d to %d arguments", id.text, lim[0], lim[1])
		}
		return &fpNode{op: "call", name: id.text, args: args}, nil
	}
	if id.text == "$this" {
		return &fpNode{op: "this"}, nil
	}
	return &fpNode{op: "path", name: id.text}, nil
}

func (p *fpParser) term() (*fpNode, error) {
	t := p.next()
	switch t.kind {
	case "str":
		return &fpNode{op: "lit", lit: t.text}, nil
	case "num":
		if strings.Contains(t.text, ".") {
			f, err := strconv.ParseFloat(t.text, 64)
			if err != nil {
				return nil, err
			}
			return &fpNode{op: "lit", lit: f}, nil
		}
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, err
		}
		return &fpNode{op: "lit", lit: n}, nil
	case "var":
		return &fpNode{op: "var", name: t.text}, nil
	case "id":
		switch t.text {
		case "true", "false":
			return &fpNode{op: "lit", lit: t.text == "true"}, nil
		}
		return p.invocation(t)
	case "op":
		switch t.text {
		case "(":
			n, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			if c := p.next(); c.text != ")" {
				return nil, fmt.Errorf("expected ) at %d", c.pos)
			}
			return n, nil
		case "{":
			if c := p.next(); c.text != "}" {
				return nil, fmt.Errorf("expected } at %d", c.pos)
			}
			return &fpNode{op: "lit", lit: nil}, nil
		}
	}
	if t.kind == "eof" {
		return nil, errors.New("unexpected end of expression")
	}
	return nil, fmt.Errorf("unexpected %q at %d", t.text, t.pos)
}

// variables reports the %names an expression uses.
func (n *fpNode) variables(out map[string]bool) {
	if n == nil {
		return
	}
	if n.op == "var" {
		out[n.name] = true
	}
	n.left.variables(out)
	n.right.variables(out)
	for _, a := range n.args {
		a.variables(out)
	}
}

var builtinVariables = map[string]bool{"resource": true, "questionnaire": true, "context": true, "ucum": true, "sct": true, "loinc": true}

// resolveExpressions checks that every %variable an expression uses is
// built in or declared by the variable extension somewhere in the form, and
// that no variable shadows another in scope. A variable is in scope for the
// expressions of the item it is declared on and of the items under it (SDC);
// a name declared in the form but out of an expression's scope gives the
// empty collection, as LHC-Forms does (its variable-scope-test relies on it).
func (p *parser) resolveExpressions() {
	p.q.varNames = map[string]bool{}
	for _, v := range p.q.variables {
		p.q.varNames[v.Name] = true
	}
	for _, it := range p.q.all {
		for _, v := range it.variables {
			p.q.varNames[v.Name] = true
		}
	}
	check := func(v Variable, inScope map[string]bool, problem func(string, ...any)) {
		used := map[string]bool{}
		v.Expr.root.variables(used)
		for name := range used {
			if !builtinVariables[name] && !inScope[name] && !p.q.varNames[name] {
				problem("variable %s uses %%%s, which is not declared before it", v.Name, name)
			}
		}
		if inScope[v.Name] || builtinVariables[v.Name] {
			problem("variable %s is declared twice", v.Name)
		}
		inScope[v.Name] = true
	}
	declared := map[string]bool{}
	for _, v := range p.q.variables {
		check(v, declared, p.formProblem)
	}
	for _, it := range p.q.all {
		if len(it.variables) == 0 {
			continue
		}
		inScope := maps.Clone(declared)
		for a := it.parent; a != nil; a = a.parent {
			for _, v := range a.variables {
				inScope[v.Name] = true
			}
		}
		for _, v := range it.variables {
			check(v, inScope, func(f string, args ...any) { p.itemProblem(it.LinkID, it.path, f, args...) })
		}
	}
	for _, it := range p.q.calculated {
		used := map[string]bool{}
		it.Calculated.root.variables(used)
		for name := range used {
			if !builtinVariables[name] && !p.q.varNames[name] {
				p.itemProblem(it.LinkID, it.path, "calculatedExpression uses %%%s, which is not declared", name)
			}
		}
		switch it.Type {
		case TypeInteger, TypeDecimal, TypeString, TypeText, TypeBoolean, TypeQuantity, TypeDate, TypeDateTime, TypeChoice, TypeOpenChoice:
		default:
			p.itemProblem(it.LinkID, it.path, "calculatedExpression is not supported on %s items", it.Type)
		}
	}
}

// --- evaluation over JSON trees

// fpItem is one element of a collection: a JSON value (map, string, bool,
// json.Number) or a computed primitive (int64, float64), with its parent,
// so weight() can find the item an answer belongs to.
type fpItem struct {
	v      any
	parent *fpItem
}

type fpEnv struct {
	q        *Questionnaire
	vars     map[string][]fpItem
	resource []fpItem
	context  []fpItem // %context: the repeating group instance, or nil for %resource
	steps    int
	today    string // today()'s date, YYYY-MM-DD: the day the answers were given
}

const maxFHIRPathSteps = 200000

var errTooMuchWork = errors.New("expression takes too much work")

func (e *fpEnv) eval(n *fpNode, focus []fpItem, this []fpItem) ([]fpItem, error) {
	e.steps++
	if e.steps > maxFHIRPathSteps {
		return nil, errTooMuchWork
	}
	switch n.op {
	case "lit":
		if n.lit == nil {
			return nil, nil
		}
		return []fpItem{{v: n.lit}}, nil
	case "this":
		return this, nil
	case "var":
		switch n.name {
		case "resource":
			return e.resource, nil
		case "context":
			if e.context != nil {
				return e.context, nil
			}
			return e.resource, nil
		case "questionnaire":
			var raw any
			if err := decodeJSONNumbers(e.q.Raw, &raw); err != nil {
				return nil, err
			}
			return []fpItem{{v: raw}}, nil
		case "ucum":
			return []fpItem{{v: "http://unitsofmeasure.org"}}, nil
		case "sct":
			return []fpItem{{v: "http://snomed.info/sct"}}, nil
		case "loinc":
			return []fpItem{{v: "http://loinc.org"}}, nil
		}
		v, ok := e.vars[n.name]
		if !ok && e.q != nil && e.q.varNames[n.name] {
			return nil, nil // declared, but not in scope here
		}
		if !ok {
			return nil, fmt.Errorf("%%%s is not defined", n.name)
		}
		return v, nil
	case "path":
		src := focus
		if n.left != nil {
			var err error
			if src, err = e.eval(n.left, focus, this); err != nil {
				return nil, err
			}
		}
		return navigate(src, n.name), nil
	case "index":
		src, err := e.eval(n.left, focus, this)
		if err != nil {
			return nil, err
		}
		idx, err := e.eval(n.right, focus, this)
		if err != nil {
			return nil, err
		}
		i, ok := singleInt(idx)
		if !ok || i < 0 || int(i) >= len(src) {
			return nil, nil
		}
		return src[i : i+1], nil
	case "neg":
		v, err := e.eval(n.left, focus, this)
		if err != nil || len(v) == 0 {
			return nil, err
		}
		return arith("-", []fpItem{{v: int64(0)}}, v)
	case "call":
		src := focus
		if n.left != nil {
			var err error
			if src, err = e.eval(n.left, focus, this); err != nil {
				return nil, err
			}
		}
		return e.call(n, src, focus, this)
	}
	l, err := e.eval(n.left, focus, this)
	if err != nil {
		return nil, err
	}
	// and/or/implies short-circuit on the left where FHIRPath allows it.
	switch n.op {
	case "and", "or", "xor", "implies":
		r, err := e.eval(n.right, focus, this)
		if err != nil {
			return nil, err
		}
		return logic(n.op, l, r)
	}
	r, err := e.eval(n.right, focus, this)
	if err != nil {
		return nil, err
	}
	switch n.op {
	case "|":
		return distinct(append(append([]fpItem(nil), l...), r...)), nil
	case "=", "!=":
		if len(l) == 0 || len(r) == 0 {
			return nil, nil
		}
		eq := len(l) == len(r)
		for i := 0; eq && i < len(l); i++ {
			eq = fpEqual(l[i].v, r[i].v)
		}
		return boolean(eq == (n.op == "=")), nil
	case "<", ">", "<=", ">=":
		if len(l) == 0 || len(r) == 0 {
			return nil, nil
		}
		if len(l) > 1 || len(r) > 1 {
			return nil, errors.New("comparison of collections with more than one item")
		}
		c, ok := fpCompare(l[0].v, r[0].v)
		if !ok {
			return nil, fmt.Errorf("cannot compare %s with %s", fpType(l[0].v), fpType(r[0].v))
		}
		switch n.op {
		case "<":
			return boolean(c < 0), nil
		case ">":
			return boolean(c > 0), nil
		case "<=":
			return boolean(c <= 0), nil
		}
		return boolean(c >= 0), nil
	case "&":
		if len(l) > 1 || len(r) > 1 {
			return nil, errors.New("& on a collection of several items")
		}
		ls, rs := "", ""
		if len(l) == 1 {
			ls, _ = asString(l[0].v)
		}
		if len(r) == 1 {
			rs, _ = asString(r[0].v)
		}
		return []fpItem{{v: ls + rs}}, nil
	}
	return arith(n.op, l, r)
}

func boolean(b bool) []fpItem { return []fpItem{{v: b}} }

func decodeJSONNumbers(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	return dec.Decode(v)
}

// navigate follows a member name on every element; FHIR choice elements
// ("value" for valueCoding, valueInteger...) are found by prefix.
func navigate(src []fpItem, name string) []fpItem {
	var out []fpItem
	for i := range src {
		m, ok := src[i].v.(map[string]any)
		if !ok {
			continue
		}
		parent := &src[i]
		add := func(v any) {
			switch x := v.(type) {
			case []any:
				for _, e := range x {
					out = append(out, fpItem{v: normalise(e), parent: parent})
				}
			case nil:
			default:
				out = append(out, fpItem{v: normalise(x), parent: parent})
			}
		}
		if v, ok := m[name]; ok {
			add(v)
			continue
		}
		for k, v := range m {
			if len(k) > len(name) && strings.HasPrefix(k, name) && unicode.IsUpper(rune(k[len(name)])) {
				add(v)
			}
		}
	}
	return out
}

// normalise turns JSON numbers into int64 or float64.
func normalise(v any) any {
	n, ok := v.(json.Number)
	if !ok {
		return v
	}
	if i, err := n.Int64(); err == nil && !strings.ContainsAny(string(n), ".eE") {
		return i
	}
	f, _ := n.Float64()
	return f
}

func fpType(v any) string {
	switch v.(type) {
	case bool:
		return "Boolean"
	case int64:
		return "Integer"
	case float64:
		return "Decimal"
	case string:
		return "String"
	case map[string]any:
		return "object"
	}
	return "value"
}

func singleInt(c []fpItem) (int64, bool) {
	if len(c) != 1 {
		return 0, false
	}
	switch x := c[0].v.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) {
			return int64(x), true
		}
	}
	return 0, false
}

func asNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case map[string]any:
		// A Quantity compares and computes by its value.
		if q, ok := x["value"]; ok {
			if _, isCode := x["code"]; isCode || len(x) <= 4 {
				return asNumber(normalise(q))
			}
		}
	}
	return 0, false
}

func asString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64:
		return strconv.FormatInt(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func fpEqual(a, b any) bool {
	if x, ok := asNumber(a); ok {
		if _, isMap := a.(map[string]any); !isMap {
			y, ok := asNumber(b)
			if _, bMap := b.(map[string]any); ok && !bMap {
				_, aDec := a.(float64)
				_, bDec := b.(float64)
				if aDec || bDec {
					// Decimals are equal to the precision a form can
					// write; binary floating point is not exact.
					return math.Abs(x-y) <= 1e-8*math.Max(1, math.Abs(y))
				}
				return x == y
			}
			return false
		}
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return false
		}
		xb, _ := json.Marshal(x)
		yb, _ := json.Marshal(y)
		return string(xb) == string(yb)
	}
	return false
}

func fpCompare(a, b any) (int, bool) {
	if x, ok := asNumber(a); ok {
		if y, ok := asNumber(b); ok {
			switch {
			case x < y:
				return -1, true
			case x > y:
				return 1, true
			}
			return 0, true
		}
		return 0, false
	}
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	}
	return 0, false
}

func truth(c []fpItem) (val, known bool, err error) {
	switch len(c) {
	case 0:
		return false, false, nil
	case 1:
		if b, ok := c[0].v.(bool); ok {
			return b, true, nil
		}
		// A single non-boolean item counts as true (FHIRPath singleton
		// evaluation of collections).
		return true, true, nil
	}
	return false, false, errors.New("a collection of several items used as a boolean")
}

func logic(op string, l, r []fpItem) ([]fpItem, error) {
	a, aKnown, err := truth(l)
	if err != nil {
		return nil, err
	}
	b, bKnown, err := truth(r)
	if err != nil {
		return nil, err
	}
	switch op {
	case "and":
		switch {
		case aKnown && !a, bKnown && !b:
			return boolean(false), nil
		case aKnown && bKnown:
			return boolean(true), nil
		}
	case "or":
		switch {
		case aKnown && a, bKnown && b:
			return boolean(true), nil
		case aKnown && bKnown:
			return boolean(false), nil
		}
	case "xor":
		if aKnown && bKnown {
			return boolean(a != b), nil
		}
	case "implies":
		switch {
		case aKnown && !a:
			return boolean(true), nil
		case bKnown && b:
			return boolean(true), nil
		case aKnown && bKnown:
			return boolean(false), nil
		}
	}
	return nil, nil
}

func arith(op string, l, r []fpItem) ([]fpItem, error) {
	if len(l) == 0 || len(r) == 0 {
		return nil, nil
	}
	if len(l) > 1 || len(r) > 1 {
		return nil, fmt.Errorf("operator %s on a collection of several items", op)
	}
	if op == "+" {
		if x, ok := l[0].v.(string); ok {
			if y, ok := r[0].v.(string); ok {
				return []fpItem{{v: x + y}}, nil
			}
		}
	}
	xi, xInt := l[0].v.(int64)
	yi, yInt := r[0].v.(int64)
	x, okx := asNumber(l[0].v)
	y, oky := asNumber(r[0].v)
	if !okx || !oky {
		return nil, fmt.Errorf("operator %s needs numbers, got %s and %s", op, fpType(l[0].v), fpType(r[0].v))
	}
	both := xInt && yInt
	switch op {
	case "+":
		if both {
			return []fpItem{{v: xi + yi}}, nil
		}
		return []fpItem{{v: x + y}}, nil
	case "-":
		if both {
			return []fpItem{{v: xi - yi}}, nil
		}
		return []fpItem{{v: x - y}}, nil
	case "*":
		if both {
			return []fpItem{{v: xi * yi}}, nil
		}
		return []fpItem{{v: x * y}}, nil
	case "/":
		if y == 0 {
			return nil, nil
		}
		return []fpItem{{v: x / y}}, nil
	case "div":
		if y == 0 {
			return nil, nil
		}
		if both {
			return []fpItem{{v: xi / yi}}, nil
		}
		return []fpItem{{v: int64(math.Trunc(x / y))}}, nil
	case "mod":
		if y == 0 {
			return nil, nil
		}
		if both {
			return []fpItem{{v: xi % yi}}, nil
		}
		return []fpItem{{v: math.Mod(x, y)}}, nil
	}
	return nil, fmt.Errorf("operator %s is not supported", op)
}

func distinct(c []fpItem) []fpItem {
	var out []fpItem
outer:
	for _, x := range c {
		for _, y := range out {
			if fpEqual(x.v, y.v) {
				continue outer
			}
		}
		out = append(out, x)
	}
	return out
}

func (e *fpEnv) call(n *fpNode, src, focus, this []fpItem) ([]fpItem, error) {
	arg := func(i int) ([]fpItem, error) { return e.eval(n.args[i], focus, this) }
	num1 := func(f func(float64) float64, keepInt bool) ([]fpItem, error) {
		if len(src) == 0 {
			return nil, nil
		}
		if len(src) > 1 {
			return nil, fmt.Errorf("%s() on several items", n.name)
		}
		if i, ok := src[0].v.(int64); ok && keepInt {
			return []fpItem{{v: int64(f(float64(i)))}}, nil
		}
		x, ok := asNumber(src[0].v)
		if !ok {
			return nil, fmt.Errorf("%s() needs a number", n.name)
		}
		return []fpItem{{v: f(x)}}, nil
	}
	switch n.name {
	case "where", "select", "all":
		var out []fpItem
		for i := range src {
			one := src[i : i+1]
			r, err := e.eval(n.args[0], one, one)
			if err != nil {
				return nil, err
			}
			switch n.name {
			case "where":
				if b, known, err := truth(r); err != nil {
					return nil, err
				} else if known && b {
					out = append(out, src[i])
				}
			case "select":
				out = append(out, r...)
			case "all":
				if b, known, err := truth(r); err != nil {
					return nil, err
				} else if !known || !b {
					return boolean(false), nil
				}
			}
		}
		if n.name == "all" {
			return boolean(true), nil
		}
		return out, nil
	case "exists":
		if len(n.args) == 1 {
			for i := range src {
				one := src[i : i+1]
				r, err := e.eval(n.args[0], one, one)
				if err != nil {
					return nil, err
				}
				if b, known, _ := truth(r); known && b {
					return boolean(true), nil
				}
			}
			return boolean(false), nil
		}
		return boolean(len(src) > 0), nil
	case "empty":
		return boolean(len(src) == 0), nil
	case "hasValue":
		return boolean(len(src) == 1 && fpType(src[0].v) != "object"), nil
	case "count":
		return []fpItem{{v: int64(len(src))}}, nil
	case "sum":
		if len(src) == 0 {
			return []fpItem{{v: int64(0)}}, nil
		}
		acc := []fpItem{{v: int64(0)}}
		for _, x := range src {
			var err error
			if acc, err = arith("+", acc, []fpItem{x}); err != nil {
				return nil, err
			}
		}
		return acc, nil
	case "first":
		if len(src) == 0 {
			return nil, nil
		}
		return src[:1], nil
	case "last":
		if len(src) == 0 {
			return nil, nil
		}
		return src[len(src)-1:], nil
	case "single":
		if len(src) > 1 {
			return nil, errors.New("single() on several items")
		}
		return src, nil
	case "distinct":
		return distinct(src), nil
	case "isDistinct":
		return boolean(len(distinct(src)) == len(src)), nil
	case "union", "combine":
		other, err := arg(0)
		if err != nil {
			return nil, err
		}
		all := append(append([]fpItem(nil), src...), other...)
		if n.name == "union" {
			return distinct(all), nil
		}
		return all, nil
	case "not":
		if len(src) == 1 {
			// An integer 1 or 0 converts to a boolean.
			if i, ok := src[0].v.(int64); ok && (i == 0 || i == 1) {
				return boolean(i == 0), nil
			}
		}
		b, known, err := truth(src)
		if err != nil || !known {
			return nil, err
		}
		return boolean(!b), nil
	case "allTrue", "anyTrue":
		all, anyTrue := true, false
		for _, x := range src {
			b, _ := x.v.(bool)
			all = all && b
			anyTrue = anyTrue || b
		}
		if n.name == "allTrue" {
			return boolean(all), nil
		}
		return boolean(anyTrue), nil
	case "iif":
		c, err := arg(0)
		if err != nil {
			return nil, err
		}
		b, known, err := truth(c)
		if err != nil {
			return nil, err
		}
		if known && b {
			return arg(1)
		}
		if len(n.args) == 3 {
			return arg(2)
		}
		return nil, nil
	case "repeat":
		var out []fpItem
		queue := src
		for len(queue) > 0 {
			var nextQ []fpItem
			for i := range queue {
				r, err := e.eval(n.args[0], queue[i:i+1], queue[i:i+1])
				if err != nil {
					return nil, err
				}
				out = append(out, r...)
				nextQ = append(nextQ, r...)
				if len(out) > maxItems*4 {
					return nil, errTooMuchWork
				}
			}
			queue = nextQ
		}
		return out, nil
	case "today":
		// A date is a string here, as date answers are (YYYY-MM-DD).
		return []fpItem{{v: e.today}}, nil
	case "descendants":
		// As the specification defines it: repeat(children()).
		var out []fpItem
		queue := src
		for len(queue) > 0 {
			var next []fpItem
			for i := range queue {
				if m, ok := queue[i].v.(map[string]any); ok {
					for k := range m {
						next = append(next, navigate(queue[i:i+1], k)...)
					}
				}
			}
			out = append(out, next...)
			if len(out) > maxItems*4 {
				return nil, errTooMuchWork
			}
			queue = next
		}
		return out, nil
	case "substring":
		if len(src) == 0 {
			return nil, nil
		}
		s, ok := src[0].v.(string)
		if len(src) > 1 || !ok {
			return nil, fmt.Errorf("substring() needs one string")
		}
		start, err := intArg(arg, 0)
		if err != nil {
			return nil, err
		}
		r := []rune(s)
		if start == nil || *start < 0 || *start >= int64(len(r)) {
			return nil, nil
		}
		end := int64(len(r))
		if len(n.args) > 1 {
			length, err := intArg(arg, 1)
			if err != nil {
				return nil, err
			}
			if length == nil {
				return nil, nil
			}
			end = min(end, *start+max(*length, 0))
		}
		return []fpItem{{v: string(r[*start:end])}}, nil
	case "children":
		var out []fpItem
		for i := range src {
			if m, ok := src[i].v.(map[string]any); ok {
				for k := range m {
					out = append(out, navigate(src[i:i+1], k)...)
				}
			}
		}
		return out, nil
	case "ofType":
		// ofType(Coding) and the like: keep items of that FHIR type.
		want := ""
		if p := n.args[0]; p.op == "path" && p.left == nil {
			want = p.name
		}
		var out []fpItem
		for _, x := range src {
			t := fpType(x.v)
			if m, ok := x.v.(map[string]any); ok {
				if _, ok := m["code"]; ok {
					if _, hasValue := m["value"]; hasValue {
						t = "Quantity"
					} else {
						t = "Coding"
					}
				}
			}
			if strings.EqualFold(t, want) || strings.EqualFold("System."+t, want) || strings.EqualFold("FHIR."+t, want) {
				out = append(out, x)
			}
		}
		return out, nil
	case "toInteger":
		if len(src) != 1 {
			return nil, nil
		}
		switch x := src[0].v.(type) {
		case int64:
			return src, nil
		case bool:
			if x {
				return []fpItem{{v: int64(1)}}, nil
			}
			return []fpItem{{v: int64(0)}}, nil
		case string:
			if i, err := strconv.ParseInt(x, 10, 64); err == nil {
				return []fpItem{{v: i}}, nil
			}
		}
		return nil, nil
	case "toDecimal":
		if len(src) != 1 {
			return nil, nil
		}
		switch x := src[0].v.(type) {
		case int64:
			return []fpItem{{v: float64(x)}}, nil
		case float64:
			return src, nil
		case string:
			if f, err := strconv.ParseFloat(x, 64); err == nil && isJSONNumber(x) {
				return []fpItem{{v: f}}, nil
			}
		}
		return nil, nil
	case "toString":
		if len(src) != 1 {
			return nil, nil
		}
		if s, ok := asString(src[0].v); ok {
			return []fpItem{{v: s}}, nil
		}
		return nil, nil
	case "length":
		if len(src) != 1 {
			return nil, nil
		}
		if s, ok := src[0].v.(string); ok {
			return []fpItem{{v: int64(len([]rune(s)))}}, nil
		}
		return nil, nil
	case "round":
		places := int64(0)
		if len(n.args) == 1 {
			p, err := arg(0)
			if err != nil {
				return nil, err
			}
			var ok bool
			if places, ok = singleInt(p); !ok || places < 0 || places > 15 {
				return nil, errors.New("round() needs a precision from 0 to 15")
			}
		}
		scale := math.Pow(10, float64(places))
		r, err := num1(func(x float64) float64 { return math.Round(x*scale) / scale }, true)
		if err == nil && len(r) == 1 && places == 0 {
			if f, ok := r[0].v.(float64); ok {
				r[0].v = int64(f)
			}
		}
		return r, err
	case "abs":
		return num1(math.Abs, true)
	case "ln", "exp":
		f := math.Log
		if n.name == "exp" {
			f = math.Exp
		}
		r, err := num1(f, false)
		if len(r) == 1 && (math.IsNaN(r[0].v.(float64)) || math.IsInf(r[0].v.(float64), 0)) {
			return nil, err
		}
		return r, err
	case "log":
		b, err := arg(0)
		if err != nil || len(b) == 0 {
			return nil, err
		}
		base, ok := asNumber(b[0].v)
		if !ok {
			return nil, errors.New("log() needs a number")
		}
		r, err := num1(func(x float64) float64 { return math.Log(x) / math.Log(base) }, false)
		if len(r) == 1 && (math.IsNaN(r[0].v.(float64)) || math.IsInf(r[0].v.(float64), 0)) {
			return nil, err
		}
		return r, err
	case "floor":
		r, err := num1(math.Floor, true)
		return toInts(r), err
	case "ceiling":
		r, err := num1(math.Ceil, true)
		return toInts(r), err
	case "truncate":
		r, err := num1(math.Trunc, true)
		return toInts(r), err
	case "sqrt":
		r, err := num1(math.Sqrt, false)
		if len(r) == 1 && math.IsNaN(r[0].v.(float64)) {
			return nil, err
		}
		return r, err
	case "power":
		p, err := arg(0)
		if err != nil || len(p) == 0 || len(src) == 0 {
			return nil, err
		}
		y, ok := asNumber(p[0].v)
		if !ok {
			return nil, errors.New("power() needs a number")
		}
		xi, xInt := src[0].v.(int64)
		yi, yInt := p[0].v.(int64)
		if xInt && yInt && yi >= 0 {
			return []fpItem{{v: int64(math.Pow(float64(xi), float64(yi)))}}, nil
		}
		r, err := num1(func(x float64) float64 { return math.Pow(x, y) }, false)
		if len(r) == 1 && math.IsNaN(r[0].v.(float64)) {
			return nil, err
		}
		return r, err
	case "ordinal", "weight":
		var out []fpItem
		for i := range src {
			if s, ok := e.score(&src[i]); ok {
				out = append(out, fpItem{v: s})
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("function %s() is not supported", n.name)
}

func toInts(r []fpItem) []fpItem {
	for i := range r {
		if f, ok := r[i].v.(float64); ok {
			r[i].v = int64(f)
		}
	}
	return r
}

// score is the ordinalValue or itemWeight of a coding: from its own
// extension, else from the option of the item the answer belongs to.
func (e *fpEnv) score(x *fpItem) (any, bool) {
	m, ok := x.v.(map[string]any)
	if !ok {
		return nil, false
	}
	if exts, ok := m["extension"].([]any); ok {
		for _, ext := range exts {
			em, _ := ext.(map[string]any)
			if u, _ := em["url"].(string); u == extOrdinalValue || u == extItemWeight {
				for k, v := range em {
					if strings.HasPrefix(k, "value") {
						return normalise(v), true
					}
				}
			}
		}
	}
	code, _ := m["code"].(string)
	system, _ := m["system"].(string)
	// Walk up to the QuestionnaireResponse item holding this answer.
	for p := x.parent; p != nil; p = p.parent {
		pm, ok := p.v.(map[string]any)
		if !ok {
			continue
		}
		linkID, ok := pm["linkId"].(string)
		if !ok {
			continue
		}
		it := e.q.Item(linkID)
		if it == nil {
			return nil, false
		}
		for _, o := range it.Options {
			if o.Code == code && (system == "" || o.System == "" || o.System == system) && o.Score != nil {
				s := *o.Score
				if s == math.Trunc(s) {
					return int64(s), true
				}
				return s, true
			}
		}
		return nil, false
	}
	return nil, false
}

// EvaluateFHIRPath evaluates an expression against a JSON resource (for the
// FHIRPath test cases and for tools); variables are JSON values.
func (q *Questionnaire) evaluate(expr *Expression, resource any, vars map[string][]fpItem) ([]fpItem, error) {
	env := &fpEnv{q: q, vars: vars, resource: []fpItem{{v: resource}}, today: time.Now().UTC().Format(time.DateOnly)}
	return env.eval(expr.root, env.resource, env.resource)
}

// intArg evaluates argument i of a call to one integer, nil when it is
// empty.
func intArg(arg func(int) ([]fpItem, error), i int) (*int64, error) {
	r, err := arg(i)
	if err != nil || len(r) == 0 {
		return nil, err
	}
	n, ok := r[0].v.(int64)
	if len(r) > 1 || !ok {
		return nil, errors.New("an argument must be one integer")
	}
	return &n, nil
}
