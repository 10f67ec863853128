// Package browsertest drives headless Chromium (Debian's `chromium`) for the
// browser tests of every service: one set-up of the browser, the step and
// read helpers that report where the page was when a step failed, and an
// accessibility check with axe-core.
//
// axe.min.js is axe-core 4.14.1 from npm, unchanged (Mozilla Public License
// 2.0, see LICENSE.axe-core and LICENSE-3RD-PARTY.axe-core.txt beside it).
// It is injected through the DevTools protocol, which the pages' CSP
// (script-src 'none') does not govern, so the pages under test stay as
// they are served.
package browsertest

import (
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is Debian's Chromium, which CI installs (.ci/run).
const ChromiumPath = "/usr/bin/chromium"

//go:embed axe.min.js
var axeSource string

// Browser is one headless Chromium with a fresh profile and one tab, for
// one test. Ctx drives the tab; it ends at the test's end or after the
// timeout given to New, whichever is first.
type Browser struct {
	Ctx context.Context
	t   testing.TB
}

// New starts headless Chromium for t, or fails t when Chromium is missing
// (AIRLOCK_SKIP_BROWSER=1 skips instead). The window is 1280x900 unless
// extra options say otherwise; tests emulate a phone with
// chromedp.EmulateViewport.
func New(t testing.TB, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	if os.Getenv("AIRLOCK_SKIP_BROWSER") == "1" {
		t.Skip("AIRLOCK_SKIP_BROWSER=1")
	}
	path := ChromiumPath
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			t.Fatalf("Chromium is not installed (apt-get install -y chromium), or set AIRLOCK_SKIP_BROWSER=1: %v", err)
		}
		path = p
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return &Browser{Ctx: ctx, t: t}
}

// Fail stops the test, naming the step and where the page was.
func (b *Browser) Fail(step string, err error) {
	b.t.Helper()
	loc, _ := chromedp.Run(b.Ctx, chromedp.Location())
	body, _ := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS("body")))
	b.t.Fatalf("%s: %v (at %s: %.500s)", step, err, loc, body)
}

// Do runs a named step's actions, failing the test when one fails.
func (b *Browser) Do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, actions...); err != nil {
		b.Fail(step, err)
	}
}

// Run runs one action that reads a value, failing the test when it fails.
func Run[T any](b *Browser, step string, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.Ctx, a)
	if err != nil {
		b.Fail(step, err)
	}
	return v
}

// Text is the visible text of the first element matching the CSS selector.
func (b *Browser) Text(selector string) string {
	b.t.Helper()
	return Run(b, "read "+selector, chromedp.Text(chromedp.CSS(selector)))
}

// Location is the tab's current URL.
func (b *Browser) Location() string {
	b.t.Helper()
	return Run(b, "read the location", chromedp.Location())
}

// AllowDownloads saves downloads into dir.
func (b *Browser) AllowDownloads(dir string) {
	b.t.Helper()
	if _, err := chromedp.CallBrowser(b.Ctx, browser.SetDownloadBehavior,
		browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir}); err != nil {
		b.t.Fatalf("allow downloads: %v", err)
	}
}

// Violation is one axe-core rule the page breaks, with the elements that
// break it.
type Violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

func (v Violation) String() string {
	return fmt.Sprintf("%s (%s): %s\n    %s", v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n    "))
}

// axeRun runs every axe-core rule of WCAG 2.x A and AA and best practice
// on the whole document and returns the violations.
const axeRun = `(async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.map(v => ({id: v.id, impact: v.impact || '', help: v.help,
    nodes: v.nodes.map(n => n.target.join(' ') + ' | ' + (n.failureSummary || '').replace(/\s+/g, ' '))}));
})()`

// Violations runs axe-core on the page as it is now.
func (b *Browser) Violations() ([]Violation, error) {
	loaded, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`typeof axe === 'object'`))
	if err != nil {
		return nil, err
	}
	if !loaded {
		if err := chromedp.Do(b.Ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
			return nil, fmt.Errorf("inject axe-core: %w", err)
		}
	}
	return chromedp.Run(b.Ctx, chromedp.Evaluate[[]Violation](axeRun, chromedp.EvalAwaitPromise))
}

// Axe fails the test (and goes on) for every axe-core violation on the page
// as it is now; page names it in the report.
func (b *Browser) Axe(page string) {
	b.t.Helper()
	vs, err := b.Violations()
	if err != nil {
		b.Fail("axe-core on "+page, err)
	}
	for _, v := range vs {
		b.t.Errorf("axe-core on %s: %s", page, v)
	}
}
