package transfer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/cli/clitest"
	"github.com/airlockhq/airlock/transfer"
)

// `transfer once` shows rows moved of pending on a terminal, and nothing
// but its JSON log lines when stderr is not one.
func TestOnceShowsProgressOnATerminalOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for range 3 {
		f.submit("symptoms", symptomsAnswers, nil)
	}
	env := f.cliEnv()
	master, slave := clitest.OpenPTY(t)
	var stdout lockedBuffer
	err := transfer.Run(context.Background(), cli.Env{Args: []string{"once"}, Getenv: func(k string) string { return env[k] },
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: slave})
	if err != nil {
		t.Fatal(err)
	}
	got := clitest.ReadUntil(t, master, "3 moved, 0 quarantined")
	if !strings.Contains(got, "transfer once: 0 of 3 pending rows moved") {
		t.Errorf("the terminal shows %q", got)
	}

	f.submit("symptoms", symptomsAnswers, nil)
	p := &program{run: transfer.Run, env: env}
	if err := p.exec(context.Background(), "once"); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(p.stderr.String()), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("stderr that is not a terminal got %q", line)
		}
	}
}
