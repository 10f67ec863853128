package migrations_test

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/cli/clitest"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

// `intake migrate` on a terminal shows each pending migration, then the
// version reached; the schema ends as without a terminal.
func TestMigrateShowsStepsOnATerminal(t *testing.T) {
	t.Parallel()
	// A database at the first intake migration only.
	first := fstest.MapFS{}
	for _, name := range []string{"000001_submissions.up.sql", "000001_submissions.down.sql"} {
		b, err := fs.ReadFile(migrations.Intake(), name)
		if err != nil {
			t.Fatal(err)
		}
		first[name] = &fstest.MapFile{Data: b}
	}
	db := pgtest.NewDB(t, "intake-first", first)
	want, err := pg.LatestVersion(migrations.Intake())
	if err != nil {
		t.Fatal(err)
	}
	master, slave := clitest.OpenPTY(t)
	env := cli.Env{Getenv: func(k string) string {
		if k == "INTAKE_DATABASE_URL" {
			return db
		}
		return ""
	}, Stdin: strings.NewReader(""), Stdout: slave, Stderr: slave}
	if err := migrations.Apply(env, "INTAKE_DATABASE_URL", "intake", migrations.Intake()); err != nil {
		t.Fatal(err)
	}
	got := clitest.ReadUntil(t, master, "intake migrate: schema version")
	if !strings.Contains(got, "intake migrate: migration 1 of ") {
		t.Errorf("the terminal shows %q", got)
	}
	var v int
	if err := queryOwner(t, db, `SELECT version FROM schema_migrations`, &v); err != nil || uint(v) != want {
		t.Errorf("schema at version %d (%v), want %d", v, err, want)
	}
}
