package transfer

import (
	"context"
	"errors"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/ops"
)

// intakeTransferGrants are what the migrations give airlock_intake_transfer
// on the intake database: read and delete submissions, never write them.
var intakeTransferGrants = []ops.Grant{
	{Object: "submissions", Privilege: "SELECT", Want: true},
	{Object: "submissions", Privilege: "DELETE", Want: true},
	{Object: "submissions", Privilege: "INSERT", Want: false},
	{Object: "submissions", Privilege: "UPDATE", Want: false},
	{Object: "submissions", Privilege: "TRUNCATE", Want: false},
}

// clinicalTransferGrants are what airlock_clinical_transfer has on the
// clinical database, and what it never has: nothing on staff, sessions,
// notes or the audit log.
var clinicalTransferGrants = []ops.Grant{
	{Object: "submissions", Privilege: "INSERT", Want: true},
	{Object: "quarantine", Privilege: "INSERT", Want: true},
	{Object: "transfer_passes", Privilege: "INSERT", Want: true},
	{Object: "transfer_passes", Privilege: "DELETE", Want: false}, // only prune_transfer_passes
	{Object: "prune_transfer_passes(interval)", Privilege: "EXECUTE", Want: true},
	{Object: "delivered", Privilege: "INSERT", Want: true},
	{Object: "submissions", Privilege: "DELETE", Want: false},
	{Object: "submissions", Privilege: "TRUNCATE", Want: false},
	{Object: "staff", Privilege: "SELECT", Want: false},
	{Object: "staff_sessions", Privilege: "SELECT", Want: false},
	{Object: "submission_notes", Privilege: "SELECT", Want: false},
	{Object: "audit_log", Privilege: "SELECT", Want: false},
	{Object: "audit_log", Privilege: "INSERT", Want: false},
}

// runCheck is `transfer check`: the settings of run (exit 2 naming a bad
// one), the key files unlocked with the passphrase, then both databases as
// the worker's logins see them, one line per check.
func runCheck(ctx context.Context, env cli.Env) error {
	if len(env.Args) > 1 {
		return cli.Usagef("transfer check: unexpected argument %q", env.Args[1])
	}
	cfg, err := LoadConfig(env.Getenv, true)
	if err != nil {
		return err
	}
	r := ops.NewReport(env.Stdout, "transfer")
	r.OK("settings: %d key file(s), %d row key(s), schedule %s", len(cfg.KeyFiles), len(cfg.RowKeys), cfg.Schedule)
	ring, err := unlockKeyring(ctx, env, cfg)
	var ue *cli.UsageError
	switch {
	case errors.As(err, &ue):
		return err // a missing or unreadable key file is a bad setting
	case err != nil:
		r.Problem("keys: %v", err)
	default:
		r.OK("keys: %d unlocked", len(ring))
		for _, k := range ring {
			k.Wipe()
		}
	}
	for _, db := range []ops.Database{
		{Name: "intake database", Var: "INTAKE_DATABASE_URL", URL: cfg.IntakeURL, Migrations: migrations.Intake(),
			Role: "airlock_intake_transfer", Grants: intakeTransferGrants},
		{Name: "clinical database", Var: "CLINICAL_DATABASE_URL", URL: cfg.ClinicalURL, Migrations: migrations.Clinical(),
			Role: "airlock_clinical_transfer", Grants: clinicalTransferGrants},
	} {
		if pool := ops.CheckDatabase(ctx, r, db); pool != nil {
			pool.Close()
		}
	}
	return r.Err()
}
