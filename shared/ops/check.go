package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/pg"
)

// Report is what `check` prints: one line per check on its writer, "ok: ..."
// or "problem: ...". Err is nil when there was no problem.
type Report struct {
	out      io.Writer
	program  string
	problems int
}

// NewReport writes the lines of program's check to out.
func NewReport(out io.Writer, program string) *Report {
	return &Report{out: out, program: program}
}

// OK records a check that passed.
func (r *Report) OK(format string, args ...any) {
	fmt.Fprintf(r.out, "ok: %s\n", fmt.Sprintf(format, args...))
}

// Problem records a check that failed. The message must already be safe to
// print: no secrets, no database URLs.
func (r *Report) Problem(format string, args ...any) {
	r.problems++
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	fmt.Fprintf(r.out, "problem: %s\n", msg)
}

// Problems is the number of problems recorded so far.
func (r *Report) Problems() int { return r.problems }

// Err is nil when every check passed, otherwise a runtime error (exit 1).
func (r *Report) Err() error {
	if r.problems == 0 {
		fmt.Fprintf(r.out, "%s check: all good\n", r.program)
		return nil
	}
	return fmt.Errorf("%s check: %d problem(s)", r.program, r.problems)
}

// Grant is one privilege a service's login must have (Want) or must not
// have (!Want) on a table or function, as the migrations grant it.
// Privilege is SELECT, INSERT, UPDATE, DELETE or TRUNCATE on a table, or
// EXECUTE on a function given with its argument types ("erase_submission(bigint)").
// A column grant counts as having SELECT, INSERT or UPDATE: "cannot SELECT"
// means not a single column.
type Grant struct {
	Object    string
	Privilege string
	Want      bool
}

// Database describes one database a service logs in to, for `check`.
type Database struct {
	Name       string // "intake database", as problems name it
	Var        string // the variable holding the URL, as problems name it
	URL        string
	Migrations fs.FS  // the set whose latest version the schema must have reached
	Role       string // the NOLOGIN role the login must be a member of
	Grants     []Grant
}

// CheckDatabase connects with db's login and checks, each as one line: the
// connection, the schema version, that the login is not a superuser and
// cannot create roles or bypass row security, membership of db.Role, and
// every grant. It returns the open pool (nil when unreachable) for more
// checks; the caller closes it.
func CheckDatabase(ctx context.Context, r *Report, db Database) *pgxpool.Pool {
	pool, err := pg.Connect(ctx, db.URL, 2)
	if err != nil {
		r.Problem("%s (%s): cannot connect: %v", db.Name, db.Var, err)
		return nil
	}
	var user string
	var super, createRole, bypassRLS bool
	err = pool.QueryRow(ctx, `SELECT current_user, rolsuper, rolcreaterole, rolbypassrls FROM pg_roles WHERE rolname = current_user`).
		Scan(&user, &super, &createRole, &bypassRLS)
	if err != nil {
		r.Problem("%s: cannot read the login's attributes: %v", db.Name, err)
		return pool
	}
	r.OK("%s: connected as %s", db.Name, user)

	if err := pg.CheckSchema(ctx, pool, db.Migrations); err != nil {
		r.Problem("%s: %v", db.Name, err)
	} else {
		v, _ := pg.LatestVersion(db.Migrations)
		r.OK("%s: schema at version %d, as this binary needs", db.Name, v)
	}

	switch {
	case super:
		r.Problem("%s: login %s is a superuser; use a login granted only %s", db.Name, user, db.Role)
	case createRole:
		r.Problem("%s: login %s has CREATEROLE (it could grant itself any role); use a login granted only %s", db.Name, user, db.Role)
	case bypassRLS:
		r.Problem("%s: login %s has BYPASSRLS; use a login granted only %s", db.Name, user, db.Role)
	default:
		r.OK("%s: login %s is not a superuser and cannot create roles", db.Name, user)
	}

	CheckRole(ctx, r, pool, db.Name, db.Role, db.Grants)
	return pool
}

// CheckRole checks, as two lines, that the pool's login is a member of role
// and holds exactly the grants (those it must have, none it must not).
func CheckRole(ctx context.Context, r *Report, pool *pgxpool.Pool, dbName, role string, grants []Grant) {
	var user string
	if err := pool.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil {
		r.Problem("%s: cannot read the login's name: %v", dbName, err)
		return
	}
	var member bool
	if err := pool.QueryRow(ctx, `SELECT pg_has_role(current_user, $1, 'MEMBER')`, role).Scan(&member); err != nil {
		r.Problem("%s: cannot check membership of %s: %v", dbName, role, err)
	} else if !member {
		r.Problem("%s: login %s is not granted %s (GRANT %s TO %s)", dbName, user, role, role, user)
	} else {
		r.OK("%s: login %s is granted %s", dbName, user, role)
	}

	wrong := 0
	for _, g := range grants {
		has, err := hasPrivilege(ctx, pool, g)
		if err != nil {
			r.Problem("%s: cannot check %s on %s: %v", dbName, g.Privilege, g.Object, err)
			wrong++
			continue
		}
		if has != g.Want {
			wrong++
			if g.Want {
				r.Problem("%s: login %s lacks %s on %s, which %s is granted by the migrations", dbName, user, g.Privilege, g.Object, role)
			} else {
				r.Problem("%s: login %s has %s on %s, which %s must never have", dbName, user, g.Privilege, g.Object, role)
			}
		}
	}
	if wrong == 0 {
		r.OK("%s: login %s has exactly the %d checked privileges the migrations give %s", dbName, user, len(grants), role)
	}
}

// RequireGrants returns an error naming the first grant the pool's login
// has that it must not have, or lacks that it must: a service refuses to
// start with such a login (fail closed) instead of failing request by request.
func RequireGrants(ctx context.Context, pool *pgxpool.Pool, role string, grants []Grant) error {
	for _, g := range grants {
		has, err := hasPrivilege(ctx, pool, g)
		if err != nil {
			return fmt.Errorf("check %s on %s: %w", g.Privilege, g.Object, err)
		}
		switch {
		case has && !g.Want:
			return fmt.Errorf("the login has %s on %s, which %s must never have: refusing to serve", g.Privilege, g.Object, role)
		case !has && g.Want:
			return fmt.Errorf("the login lacks %s on %s (GRANT %s TO the login): refusing to serve", g.Privilege, g.Object, role)
		}
	}
	return nil
}

// hasPrivilege asks Postgres whether the current user holds g's privilege
// (directly or through any role it belongs to).
func hasPrivilege(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, g Grant) (bool, error) {
	var sql string
	switch strings.ToUpper(g.Privilege) {
	case "SELECT", "INSERT", "UPDATE", "REFERENCES":
		sql = `SELECT has_any_column_privilege(current_user, $1::text::regclass, $2)`
	case "DELETE", "TRUNCATE", "TRIGGER":
		sql = `SELECT has_table_privilege(current_user, $1::text::regclass, $2)`
	case "EXECUTE":
		sql = `SELECT has_function_privilege(current_user, $1::text::regprocedure, $2)`
	default:
		return false, errors.New("unknown privilege")
	}
	var has bool
	err := q.QueryRow(ctx, sql, g.Object, strings.ToUpper(g.Privilege)).Scan(&has)
	return has, err
}
