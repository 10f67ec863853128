package intake

import (
	"context"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/ops"
)

// writerGrants are what the migrations give airlock_intake_writer, and what
// they never give it: the login of a public server may add ciphertext and
// read nothing back.
var writerGrants = []ops.Grant{
	{Object: "submissions", Privilege: "INSERT", Want: true},
	{Object: "submissions", Privilege: "SELECT", Want: false},
	{Object: "submissions", Privilege: "UPDATE", Want: false},
	{Object: "submissions", Privilege: "DELETE", Want: false},
	{Object: "submissions", Privilege: "TRUNCATE", Want: false},
	{Object: "schema_migrations", Privilege: "SELECT", Want: true},
	// Replay tombstones (migration 000090) are read and written only by
	// the triggers, never by a login.
	{Object: "submission_replays", Privilege: "SELECT", Want: false},
	{Object: "submission_replays", Privilege: "INSERT", Want: false},
	{Object: "submission_replays", Privilege: "DELETE", Want: false},
}

// resultsGrants are what the migrations give airlock_intake_results, which
// intake's login holds beside the writer role to serve one-time result
// links (docs/results.md): read a result by its hash, count wrong answers,
// delete it once fetched; never store one (only transfer does).
var resultsGrants = []ops.Grant{
	{Object: "results", Privilege: "SELECT", Want: true},
	{Object: "results", Privilege: "DELETE", Want: true},
	{Object: "results", Privilege: "UPDATE", Want: true}, // the failures column only
	{Object: "results", Privilege: "INSERT", Want: false},
	{Object: "results", Privilege: "TRUNCATE", Want: false},
	{Object: "result_tombstones", Privilege: "SELECT", Want: true},
	{Object: "result_tombstones", Privilege: "INSERT", Want: true},
	{Object: "result_tombstones", Privilege: "DELETE", Want: false},
}

// runCheck is `intake check`: the settings of serve (exit 2 naming a bad
// one), then the database as serve's login sees it, one line per check.
func runCheck(ctx context.Context, env cli.Env) error {
	if len(env.Args) > 1 {
		return cli.Usagef("intake check: unexpected argument %q", env.Args[1])
	}
	cfg, err := LoadConfig(env.Getenv)
	if err != nil {
		return err
	}
	r := ops.NewReport(env.Stdout, "intake")
	r.OK("settings: %s", cfg)
	pool := ops.CheckDatabase(ctx, r, ops.Database{
		Name: "intake database", Var: "INTAKE_DATABASE_URL", URL: cfg.DatabaseURL,
		Migrations: migrations.Intake(), Role: "airlock_intake_writer", Grants: writerGrants,
	})
	if pool != nil {
		ops.CheckRole(ctx, r, pool, "intake database", "airlock_intake_results", resultsGrants)
		pool.Close()
	}
	if cfg.ACME != nil {
		problems := checkACME(ctx, cfg.ACME)
		for _, p := range problems {
			r.Problem("%v", p)
		}
		if len(problems) == 0 {
			r.OK("ACME: directory %s answers; cache %s writable", cfg.ACME.Directory, cfg.ACME.Cache)
		}
	}
	return r.Err()
}
