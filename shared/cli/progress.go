package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Progress reports a long command's progress on one rewritten line of
// stderr when stderr is a terminal; otherwise (a pipe, a file, a log
// collector) it writes nothing. Updates are drawn at most ten times a second;
// Done draws the last state and ends the line.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer // nil: quiet
	label string
	last  time.Time
	drawn bool
}

// Progress returns a reporter labelled label (such as "transfer once") that
// draws on e.Stderr only when it is a terminal.
func (e Env) Progress(label string) *Progress {
	p := &Progress{label: label}
	if f, ok := e.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.w = f
	}
	return p
}

// Active reports whether the reporter draws anything (stderr is a terminal).
func (p *Progress) Active() bool { return p != nil && p.w != nil }

// Update draws "label: msg" (msg from format and args), throttled.
func (p *Progress) Update(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw(fmt.Sprintf(format, args...))
	}
}

// Done draws "label: msg" whatever the throttle and ends the line, if
// anything was drawn or msg is to be shown.
func (p *Progress) Done(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(fmt.Sprintf(format, args...))
	fmt.Fprintln(p.w)
	p.drawn = false
}

func (p *Progress) draw(msg string) {
	// \r back to the start, \x1b[K clears what a longer line left.
	fmt.Fprintf(p.w, "\r%s: %s\x1b[K", p.label, msg)
	p.drawn = true
}
