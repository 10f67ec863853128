package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/cli/clitest"
)

func TestProgressDrawsOnATerminalOnly(t *testing.T) {
	var buf bytes.Buffer
	p := cli.Env{Stderr: &buf}.Progress("job")
	p.Update("%d of %d", 1, 2)
	p.Done("finished")
	if p.Active() || buf.Len() != 0 {
		t.Errorf("progress wrote %q to stderr that is not a terminal", buf.String())
	}

	master, slave := clitest.OpenPTY(t)
	p = cli.Env{Stderr: slave}.Progress("job")
	if !p.Active() {
		t.Fatal("progress is quiet on a terminal")
	}
	p.Update("%d of %d rows", 1, 2)
	p.Done("%d rows", 2)
	got := clitest.ReadUntil(t, master, "\rjob: 2 rows")
	if !strings.Contains(got, "job: 1 of 2 rows") || !strings.Contains(got, "\rjob: 2 rows") {
		t.Errorf("terminal shows %q", got)
	}
}
