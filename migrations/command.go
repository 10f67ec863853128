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
	v, err := pg.Migrate(dsn, set)
	if err != nil {
		return err
	}
	env.Logger().Info(database+" database migrated", "version", v)
	return nil
}
