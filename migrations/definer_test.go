package migrations_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/pg"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

// TestSecurityDefinerFunctionsListPgTempLast: a SECURITY DEFINER function
// runs as its owner; unless its search_path names pg_temp last, Postgres
// looks in the caller's pg_temp first for tables, and a caller could put a
// temporary view in front of a real table and run its own code as the owner
// (an adversarial review found this in intake's replay-key triggers).
func TestSecurityDefinerFunctionsListPgTempLast(t *testing.T) {
	t.Parallel()
	for set, m := range map[string]fs.FS{"intake": migrations.Intake(), "clinical": migrations.Clinical()} {
		db := pgtest.NewDB(t, set, m)
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, `SELECT p.oid::regprocedure::text, coalesce(p.proconfig, '{}')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.prosecdef AND n.nspname = 'public'`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var fn string
			var config []string
			if err := rows.Scan(&fn, &config); err != nil {
				t.Fatal(err)
			}
			n++
			path := ""
			for _, kv := range config {
				if v, ok := strings.CutPrefix(kv, "search_path="); ok {
					path = v
				}
			}
			if !strings.HasSuffix(strings.ReplaceAll(path, " ", ""), ",pg_temp") {
				t.Errorf("%s: %s is SECURITY DEFINER with search_path %q; it must end with pg_temp", set, fn, path)
			}
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		conn.Close(ctx)
		if n == 0 {
			t.Errorf("%s: no SECURITY DEFINER function found: the query is wrong", set)
		}
	}
}

// TestServiceLoginsCannotCreateTemporaryObjects: after the migrations no
// service login can create a temporary table, view or function, the other
// half of the defence above. The database is migrated from empty, because a
// clone from a template does not carry the database's own privileges.
func TestServiceLoginsCannotCreateTemporaryObjects(t *testing.T) {
	t.Parallel()
	for set, c := range map[string]struct {
		m     fs.FS
		roles []string
	}{
		"intake":   {migrations.Intake(), []string{"airlock_intake_writer", "airlock_intake_results", "airlock_intake_transfer"}},
		"clinical": {migrations.Clinical(), []string{"airlock_clinical_app", "airlock_clinical_transfer"}},
	} {
		db := pgtest.NewEmptyDB(t)
		if _, err := pg.Migrate(db, c.m); err != nil {
			t.Fatalf("%s: migrate: %v", set, err)
		}
		for _, role := range c.roles {
			url := pgtest.URLAs(t, db, role)
			for _, sql := range []string{
				`CREATE TEMP TABLE shadow (x int)`,
				`CREATE TEMP VIEW shadow AS SELECT 1 AS x`,
			} {
				if got := exec(t, url, sql); got != insufficientPrivilege {
					t.Errorf("%s as %s: %s: SQLSTATE %q, want %s", set, role, sql, got, insufficientPrivilege)
				}
			}
		}
	}
}
