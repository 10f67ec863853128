// Package pgtest gives tests a real, fresh Postgres database each: a template
// per migration set is migrated once per test binary, and every test clones
// it (CREATE DATABASE ... TEMPLATE) and drops its clone when it ends.
//
// The admin connection comes from AIRLOCK_TEST_DATABASE_URL, by default the
// local server as user postgres.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/airlockhq/airlock/shared/pg"
)

// DefaultAdminURL is used when AIRLOCK_TEST_DATABASE_URL is unset.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// LoginPassword is the password of the login users tests create to act as the
// Airlock roles. Test-only; those users exist only on test servers.
const LoginPassword = "airlock-test-login"

var (
	mu        sync.Mutex // Postgres cannot clone one template concurrently
	templates = map[string]string{}
	created   []string
)

// AdminURL is the URL of a superuser connection to the test server.
func AdminURL() string {
	if v := os.Getenv("AIRLOCK_TEST_DATABASE_URL"); v != "" {
		return v
	}
	return DefaultAdminURL
}

// URLFor returns u with its database (and, when user is not empty, its user
// and password) replaced.
func URLFor(base, dbname, user, password string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(fmt.Sprintf("pgtest: AIRLOCK_TEST_DATABASE_URL must be a postgres:// URL: %v", err))
	}
	u.Path = "/" + dbname
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

func adminExec(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return fmt.Errorf("connect to test server (set AIRLOCK_TEST_DATABASE_URL): %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Main runs the package's tests, then drops the templates they created.
func Main(m *testing.M) {
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mu.Lock()
	for _, name := range created {
		if err := adminExec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: drop template %s: %v\n", name, err)
		}
	}
	mu.Unlock()
	os.Exit(code)
}

// NewDB creates a fresh database migrated with the named migration set and
// returns its URL for the admin (owner) user. It is dropped when tb ends.
func NewDB(tb testing.TB, set string, migrations fs.FS) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	mu.Lock()
	tpl, ok := templates[set]
	if !ok {
		tpl = randomName("airlock_tpl_" + set + "_")
		if err := adminExec(ctx, fmt.Sprintf("CREATE DATABASE %s", pgx.Identifier{tpl}.Sanitize())); err != nil {
			mu.Unlock()
			tb.Fatalf("create template database: %v", err)
		}
		created = append(created, tpl)
		if _, err := pg.Migrate(URLFor(AdminURL(), tpl, "", ""), migrations); err != nil {
			mu.Unlock()
			tb.Fatalf("migrate template %s: %v", set, err)
		}
		templates[set] = tpl
	}
	name := randomName("airlock_test_" + set + "_")
	err := adminExec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{tpl}.Sanitize()))
	mu.Unlock()
	if err != nil {
		tb.Fatalf("clone template: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})
	return URLFor(AdminURL(), name, "", "")
}

// NewEmptyDB creates an empty database (not cloned from a template) and
// returns its URL for the admin user; it is dropped when tb ends. Use it to
// see what migrations do to the database itself: CREATE DATABASE ...
// TEMPLATE copies the schema but not the database's own privileges.
func NewEmptyDB(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := randomName("airlock_test_empty_")
	if err := adminExec(ctx, fmt.Sprintf("CREATE DATABASE %s", pgx.Identifier{name}.Sanitize())); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := adminExec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})
	return URLFor(AdminURL(), name, "", "")
}

var loginMu sync.Mutex

// URLAs returns a URL for dbURL's database that logs in as a LOGIN user which
// is a member of role and nothing else, the way ops deploy Airlock.
func URLAs(tb testing.TB, dbURL, role string) string {
	tb.Helper()
	return URLAsRoles(tb, dbURL, "airlock_test_"+role, role)
}

// URLAsRoles is URLAs for a login that holds several roles, such as intake's
// server login (airlock_intake_writer and airlock_intake_results). user
// names the login; use one name per set of roles.
func URLAsRoles(tb testing.TB, dbURL, user string, roles ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	loginMu.Lock()
	defer loginMu.Unlock()
	// Users are cluster-wide and test binaries run in parallel: tolerate a
	// concurrent creator.
	stmt := fmt.Sprintf(`DO $$ BEGIN
  CREATE ROLE %[1]s LOGIN PASSWORD '%[2]s';
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;`, pgx.Identifier{user}.Sanitize(), LoginPassword)
	for _, role := range roles {
		stmt += fmt.Sprintf("\nGRANT %s TO %s;", pgx.Identifier{role}.Sanitize(), pgx.Identifier{user}.Sanitize())
	}
	var err error
	for range 5 {
		if err = adminExec(ctx, stmt); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("create login %s: %v", user, err)
	}
	u, _ := url.Parse(dbURL)
	return URLFor(AdminURL(), u.Path[1:], user, LoginPassword)
}
