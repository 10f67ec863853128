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
	r, err := loadFS(examples, "examples", "examples")
	if err != nil {
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

// LoadDir parses every *.json file in dir (not its subdirectories), so that
// a deployment can use its own forms; any invalid file fails the whole load,
// naming the file and the item, so a server never starts with half its
// forms. Duplicate form ids, or a directory without forms, are errors too.
func LoadDir(dir string) (*Registry, error) {
	return loadFS(os.DirFS(dir), ".", dir)
}

// loadFS loads the forms in dir of fsys; shownDir is how errors name that
// directory.
func loadFS(fsys fs.FS, dir, shownDir string) (*Registry, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list forms: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.json forms in %s", shownDir)
	}
	slices.Sort(names)
	forms := make([]*Questionnaire, 0, len(names))
	fileOf := make(map[string]string, len(names))
	for _, name := range names {
		file := filepath.Join(shownDir, path.Base(name))
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read form %s: %w", file, err)
		}
		q, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("form %s: %w", file, err)
		}
		if other, dup := fileOf[q.ID]; dup {
			return nil, fmt.Errorf("form %s: id %q is already used by %s", file, q.ID, other)
		}
		fileOf[q.ID] = file
		forms = append(forms, q)
	}
	return NewRegistry(forms...)
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
