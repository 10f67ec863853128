package forms

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Registry holds the forms a service knows, by id. It is immutable once
// built, so handlers share one without locking.
type Registry struct {
	byID map[string]*Questionnaire
	list []*Questionnaire // sorted by ID
}

// NewRegistry builds a registry from already parsed forms, for callers (and
// tests) that do not load them from a directory. Duplicate ids are an error.
func NewRegistry(forms ...*Questionnaire) (*Registry, error) {
	r := &Registry{byID: make(map[string]*Questionnaire, len(forms))}
	for _, q := range forms {
		if q == nil {
			return nil, errors.New("nil form")
		}
		if _, dup := r.byID[q.ID]; dup {
			return nil, fmt.Errorf("duplicate form id %q", q.ID)
		}
		r.byID[q.ID] = q
		r.list = append(r.list, q)
	}
	slices.SortFunc(r.list, func(a, b *Questionnaire) int { return strings.Compare(a.ID, b.ID) })
	return r, nil
}

//go:embed examples/*.json
var examples embed.FS

var builtin = sync.OnceValue(func() *Registry {
	r, problems := loadFS(examples, "examples", "examples", LoadOptions{BaseURL: DefaultBaseURL})
	if len(problems) > 0 {
		err := errors.New(strings.Join(problems, "; "))
		// The files are compiled in and a test parses them, so this means
		// the binary itself is broken.
		panic("forms: built-in example forms: " + err.Error())
	}
	return r
})

// Builtin returns the example forms compiled into the binary, so a fresh
// deployment (and every test) has working forms without any files. It
// panics only if an embedded file is invalid, which a test guards against.
func Builtin() *Registry {
	return builtin()
}

// LoadOptions configure LoadDirWith.
type LoadOptions struct {
	// BaseURL names forms without a url: BaseURL + "/" + id. When empty,
	// such forms are refused.
	BaseURL string
}

// ValueSetsDir is the subdirectory of a forms directory holding the
// ValueSet JSON files that answerValueSet canonicals resolve to.
const ValueSetsDir = "valuesets"

// LoadDir is LoadDirWith without a base URL.
func LoadDir(dir string) (*Registry, error) {
	return LoadDirWith(dir, LoadOptions{})
}

// LoadDirWith parses every *.json file in dir (not its subdirectories), so
// that a deployment can use its own forms, with the ValueSets in
// dir/valuesets. Any invalid file fails the whole load, naming the file, the
// item and the problem, so a server never starts with half its forms; the
// error is one line (the first problem and how many more there are: CheckDir
// lists them all). Duplicate form ids, or a directory without forms, are
// errors too.
func LoadDirWith(dir string, opts LoadOptions) (*Registry, error) {
	reg, problems := loadFS(os.DirFS(dir), ".", dir, opts)
	if len(problems) > 0 {
		msg := problems[0]
		if n := len(problems) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more problem%s; `intake forms check %s` lists them)", n, plural(n), dir)
		}
		return nil, errors.New(msg)
	}
	return reg, nil
}

// CheckDir loads dir as LoadDirWith does and returns every problem in every
// file, one line each ("file: item "x" (path): problem"), or none.
func CheckDir(dir string, opts LoadOptions) []string {
	_, problems := loadFS(os.DirFS(dir), ".", dir, opts)
	return problems
}

// loadFS loads the forms in dir of fsys; shownDir is how errors name that
// directory.
func loadFS(fsys fs.FS, dir, shownDir string, opts LoadOptions) (*Registry, []string) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, []string{fmt.Sprintf("list forms: %v", err)}
	}
	if len(names) == 0 {
		return nil, []string{fmt.Sprintf("no *.json forms in %s", shownDir)}
	}
	var problems []string
	valueSets := map[string]*ValueSet{}
	vsNames, _ := fs.Glob(fsys, path.Join(dir, ValueSetsDir, "*.json"))
	slices.Sort(vsNames)
	for _, name := range vsNames {
		file := filepath.Join(shownDir, ValueSetsDir, path.Base(name))
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			problems = append(problems, fmt.Sprintf("read valueset %s: %v", file, err))
			continue
		}
		vs, err := ParseValueSet(data)
		if err != nil {
			problems = append(problems, fmt.Sprintf("valueset %s: %v", file, err))
			continue
		}
		if vs.URL == "" {
			problems = append(problems, fmt.Sprintf("valueset %s: has no url", file))
			continue
		}
		valueSets[vs.URL] = vs
		if vs.Version != "" {
			valueSets[vs.URL+"|"+vs.Version] = vs
		}
	}
	slices.Sort(names)
	forms := make([]*Questionnaire, 0, len(names))
	fileOf := make(map[string]string, len(names))
	for _, name := range names {
		file := filepath.Join(shownDir, path.Base(name))
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			problems = append(problems, fmt.Sprintf("read form %s: %v", file, err))
			continue
		}
		q, err := ParseWith(data, ParseOptions{
			BaseURL:    opts.BaseURL,
			FallbackID: strings.TrimSuffix(path.Base(name), ".json"),
			ValueSets:  valueSets,
		})
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				for _, p := range pe.Problems {
					problems = append(problems, fmt.Sprintf("form %s: %s", file, p))
				}
			} else {
				problems = append(problems, fmt.Sprintf("form %s: %v", file, err))
			}
			continue
		}
		if other, dup := fileOf[q.ID]; dup {
			problems = append(problems, fmt.Sprintf("form %s: id %q is already used by %s", file, q.ID, other))
			continue
		}
		fileOf[q.ID] = file
		forms = append(forms, q)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	reg, err := NewRegistry(forms...)
	if err != nil {
		return nil, []string{err.Error()}
	}
	return reg, nil
}

// Get returns the form with the given id, as named in a URL or a stored row.
func (r *Registry) Get(id string) (*Questionnaire, bool) {
	q, ok := r.byID[id]
	return q, ok
}

// List returns every form sorted by ID, for index pages and status output.
func (r *Registry) List() []*Questionnaire {
	return slices.Clone(r.list)
}
