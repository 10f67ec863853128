package clinical

import (
	"context"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/ops"
)

// appGrants are what the migrations give airlock_clinical_app that matter
// most, and what they never give it: the audit log is read and appended,
// never changed; submissions are read, never inserted or deleted directly.
var appGrants = []ops.Grant{
	{Object: "submissions", Privilege: "SELECT", Want: true},
	{Object: "submissions", Privilege: "INSERT", Want: false},
	{Object: "submissions", Privilege: "DELETE", Want: false},
	{Object: "submissions", Privilege: "TRUNCATE", Want: false},
	{Object: "staff", Privilege: "SELECT", Want: true},
	{Object: "staff_sessions", Privilege: "SELECT", Want: true},
	{Object: "audit_log", Privilege: "SELECT", Want: true},
	{Object: "audit_log", Privilege: "UPDATE", Want: false},
	{Object: "audit_log", Privilege: "DELETE", Want: false},
	{Object: "audit_log", Privilege: "TRUNCATE", Want: false},
	{Object: "transfer_passes", Privilege: "INSERT", Want: false},
	{Object: "erase_submission(bigint)", Privilege: "EXECUTE", Want: true},
}

// runCheck is `clinical check`: the settings of serve (exit 2 naming a bad
// one), then the database as serve's login sees it, one line per check.
func runCheck(ctx context.Context, env cli.Env) error {
	if len(env.Args) > 1 {
		return cli.Usagef("clinical check: unexpected argument %q", env.Args[1])
	}
	cfg, err := LoadServeConfig(env.Getenv)
	if err != nil {
		return err
	}
	r := ops.NewReport(env.Stdout, "clinical")
	r.OK("settings: addr=%s tls=%t metrics=%q forms=%d", cfg.Addr, cfg.TLSCert != "", cfg.MetricsAddr, len(cfg.Forms.List()))
	pool := ops.CheckDatabase(ctx, r, ops.Database{
		Name: "clinical database", Var: "CLINICAL_DATABASE_URL", URL: cfg.DatabaseURL,
		Migrations: migrations.Clinical(), Role: "airlock_clinical_app", Grants: appGrants,
	})
	if pool != nil {
		pool.Close()
	}
	return r.Err()
}
