package migrations

import (
	"io/fs"

	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/config"
	"github.com/airlockhq/airlock/shared/pg"
)

// Apply is `intake migrate` and `clinical migrate`: apply set to the database
// named by the variable, as its owner, and log the version reached.
func Apply(env cli.Env, variable, database string, set fs.FS) error {
	r := config.NewReader(env.Getenv)
	dsn := r.DatabaseURL(variable)
	if err := r.Err(); err != nil {
		return err
	}
	progress := env.Progress(database + " migrate")
	var step func(i, n int, version uint)
	if progress.Active() {
		step = func(i, n int, version uint) { progress.Update("migration %d of %d (version %d)", i, n, version) }
	}
	v, err := pg.MigrateWithProgress(dsn, set, step)
	progress.Done("schema version %d", v)
	if err != nil {
		return err
	}
	env.Logger().Info(database+" database migrated", "version", v)
	return nil
}
