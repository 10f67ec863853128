// Package pg holds the Postgres plumbing both databases share: pools with
// timeouts, transactions, embedded migrations and advisory locks.
package pg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/golang-migrate/migrate/v4"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// Connect opens a pool and checks the server answers. Every connection gets a
// statement timeout so no query can hang a request or a pass forever.
func Connect(ctx context.Context, dsn string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, ErrBadURL
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["statement_timeout"]; !ok {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = "60000"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s on %s: %w", cfg.ConnConfig.Database, cfg.ConnConfig.Host, err)
	}
	return pool, nil
}

// ErrBadURL is a database URL that does not parse. The URL itself is never
// repeated in an error: it may hold a password.
var ErrBadURL = errors.New("malformed database URL (want postgres://user:password@host:port/dbname)")

// ValidURL reports whether dsn parses as a Postgres connection string.
func ValidURL(dsn string) bool {
	_, err := pgx.ParseConfig(dsn)
	return err == nil
}

// LongReadTimeout bounds each statement of a long read (BeginLongRead).
const LongReadTimeout = 4 * time.Hour

// BeginLongRead begins a read-only transaction whose statements may run for
// up to LongReadTimeout instead of the pool's 60 seconds: for a streaming
// read whose statement stays open while its rows go to a consumer as slow as
// a person's download (an export of millions of submissions, the audit
// chain's walk). The caller rolls it back when done; ctx still cancels it.
func BeginLongRead(ctx context.Context, db *pgxpool.Pool) (pgx.Tx, error) {
	tx, err := db.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", LongReadTimeout.Milliseconds())); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("begin: %w", err)
	}
	return tx, nil
}

// InTx runs fn in a transaction, committing when it returns nil and rolling
// back otherwise (both errors are kept).
func InTx(ctx context.Context, db interface {
	Begin(context.Context) (pgx.Tx, error)
}, fn func(pgx.Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) {
			return errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func newMigrate(dsn string, migrations fs.FS) (*migrate.Migrate, func(), error) {
	connCfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, nil, ErrBadURL
	}
	db := stdlib.OpenDB(*connCfg)
	driver, err := migratepgx.WithInstance(db, &migratepgx.Config{StatementTimeout: 5 * time.Minute})
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("connect for migrations: %w", err)
	}
	src, err := iofs.New(migrations, ".")
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", driver)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("prepare migrations: %w", err)
	}
	m.LockTimeout = time.Minute
	return m, func() { src.Close(); driver.Close() }, nil
}

// Migrate applies every pending migration; an up-to-date schema is success.
// It returns the schema version reached.
func Migrate(dsn string, migrations fs.FS) (uint, error) {
	return MigrateWithProgress(dsn, migrations, nil)
}

// MigrateWithProgress is Migrate telling step, when not nil, before each
// pending migration: its position among them and its version.
func MigrateWithProgress(dsn string, migrations fs.FS, step func(i, n int, version uint)) (uint, error) {
	m, closeFn, err := newMigrate(dsn, migrations)
	if err != nil {
		return 0, err
	}
	defer closeFn()
	var pending []uint
	if step != nil {
		pending, err = pendingVersions(m, migrations)
		if err != nil {
			return 0, err
		}
	}
	for i, v := range pending {
		step(i+1, len(pending), v)
		if err := m.Migrate(v); err != nil && !errors.Is(err, migrate.ErrNoChange) {
			return 0, fmt.Errorf("migrate: %w", err)
		}
	}
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	v, dirty, err := m.Version()
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if dirty {
		return v, fmt.Errorf("schema version %d is dirty: a migration failed half-way; fix it by hand, then `migrate force`", v)
	}
	return v, nil
}

// pendingVersions lists the versions in the set above the database's.
func pendingVersions(m *migrate.Migrate, migrations fs.FS) ([]uint, error) {
	current, dirty, err := m.Version()
	switch {
	case errors.Is(err, migrate.ErrNilVersion):
		current = 0
	case err != nil:
		return nil, fmt.Errorf("read schema version: %w", err)
	case dirty:
		return nil, nil // m.Up reports it
	}
	src, err := iofs.New(migrations, ".")
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var out []uint
	for v, err := src.First(); err == nil; v, err = src.Next(v) {
		if v > current {
			out = append(out, v)
		}
	}
	return out, nil
}

// LatestVersion is the highest migration version in the set.
func LatestVersion(migrations fs.FS) (uint, error) {
	src, err := iofs.New(migrations, ".")
	if err != nil {
		return 0, err
	}
	defer src.Close()
	v, err := src.First()
	if err != nil {
		return 0, err
	}
	for {
		next, err := src.Next(v)
		if err != nil {
			return v, nil
		}
		v = next
	}
}

// ErrSchemaOutdated means the database lacks migrations this binary needs.
var ErrSchemaOutdated = errors.New("database schema is older than this binary: run migrate first")

// CheckSchema refuses an outdated or dirty schema, so a binary never runs
// against tables it does not know. It reads golang-migrate's bookkeeping
// table, which the first migration lets every Airlock role read.
func CheckSchema(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, migrations fs.FS) error {
	want, err := LatestVersion(migrations)
	if err != nil {
		return err
	}
	var have int64
	var dirty bool
	err = q.QueryRow(ctx, `SELECT version, dirty FROM schema_migrations LIMIT 1`).Scan(&have, &dirty)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrSchemaOutdated
		}
		return fmt.Errorf("read schema version: %w", err)
	}
	if dirty || uint(have) < want {
		return fmt.Errorf("%w (database at %d, binary needs %d)", ErrSchemaOutdated, have, want)
	}
	return nil
}
