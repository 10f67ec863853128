package clinical_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/clinical"
	"github.com/airlockhq/airlock/migrations"
	"github.com/airlockhq/airlock/shared/cli"
	"github.com/airlockhq/airlock/shared/pg/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// db is one fresh clinical database: the owner (who can edit any row, as a
// stolen database login or a restored backup can) and the staff app's login.
type clinicalDB struct {
	ownerURL, appURL string
	owner, app       *pgxpool.Pool
}

func newClinicalDB(t *testing.T) *clinicalDB {
	t.Helper()
	d := &clinicalDB{ownerURL: pgtest.NewDB(t, "clinical", migrations.Clinical())}
	d.appURL = pgtest.URLAs(t, d.ownerURL, "airlock_clinical_app")
	d.owner = openPool(t, d.ownerURL)
	d.app = openPool(t, d.appURL)
	return d
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func (d *clinicalDB) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := d.owner.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (d *clinicalDB) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := d.owner.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// run runs the clinical program in-process with exactly env.
func runClinical(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = clinical.Run(context.Background(), cli.Env{
		Args:   args,
		Getenv: func(k string) string { return env[k] },
		Stdin:  bytes.NewReader(nil),
		Stdout: &out,
		Stderr: &errOut,
	})
	return out.String(), errOut.String(), err
}

func (d *clinicalDB) env(secret clinical.SecretKey) map[string]string {
	return map[string]string{"CLINICAL_DATABASE_URL": d.appURL, "CLINICAL_SECRET_KEY": secret.String()}
}

func newSecretKey(t *testing.T) clinical.SecretKey {
	t.Helper()
	k, err := clinical.NewSecretKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
