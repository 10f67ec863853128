package clinical

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/pg"
)

// auditLockKey serialises appends so the chain stays a chain.
const auditLockKey int64 = 0x4169726c6f636b02

// Audit appends to and verifies the audit log: an HMAC chain keyed by a key
// derived from CLINICAL_SECRET_KEY. The database owner can read and edit the
// rows but cannot recompute a MAC, so any edit, insertion or deletion inside
// the chain is detected; truncation of the tail is caught against the chain
// head the app logs.
type Audit struct {
	pool *pgxpool.Pool
	key  []byte
	now  func() time.Time
}

// NewAudit binds the audit log to its key.
func NewAudit(pool *pgxpool.Pool, secret SecretKey) *Audit {
	return &Audit{pool: pool, key: secret.derive("audit chain v1"), now: time.Now}
}

// Entry is one audit record. Target and Detail hold ids and actions, never
// patient content.
type Entry struct {
	ID      int64
	At      time.Time
	Actor   string
	Action  string
	Target  string
	Detail  string // JSON object
	PrevMAC []byte
	MAC     []byte
}

func (a *Audit) mac(e *Entry) []byte {
	m := hmac.New(sha256.New, a.key)
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		m.Write(n[:])
		m.Write(b)
	}
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], uint64(e.ID))
	binary.BigEndian.PutUint64(n[8:], uint64(e.At.UnixMicro()))
	field(e.PrevMAC)
	field(n[:])
	field([]byte(e.Actor))
	field([]byte(e.Action))
	field([]byte(e.Target))
	field([]byte(e.Detail))
	return m.Sum(nil)
}

// genesis is the PrevMAC of the first entry.
var genesis = make([]byte, sha256.Size)

// Append writes one entry at the head of the chain and returns it.
func (a *Audit) Append(ctx context.Context, actor, action, target string, detail any) (*Entry, error) {
	d, err := json.Marshal(detail)
	if err != nil {
		return nil, fmt.Errorf("audit detail: %w", err)
	}
	e := &Entry{Actor: actor, Action: action, Target: target, Detail: string(d)}
	err = pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLockKey); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `SELECT mac FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&e.PrevMAC)
		if errors.Is(err, pgx.ErrNoRows) {
			e.PrevMAC = genesis
		} else if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT nextval('audit_log_id_seq')`).Scan(&e.ID); err != nil {
			return err
		}
		e.At = a.now().UTC().Truncate(time.Microsecond)
		e.MAC = a.mac(e)
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (id, at, actor, action, target, detail, prev_mac, mac)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, e.ID, e.At, e.Actor, e.Action, e.Target, e.Detail, e.PrevMAC, e.MAC)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("append audit entry: %w", err)
	}
	return e, nil
}

// ChainBreak describes the first entry at which the chain fails.
type ChainBreak struct {
	ID     int64
	Reason string
}

func (b *ChainBreak) Error() string {
	return fmt.Sprintf("audit chain broken at entry %d: %s", b.ID, b.Reason)
}

// Verify walks the whole chain. It returns the number of entries and the head
// MAC when intact, or a *ChainBreak naming the first broken entry.
func (a *Audit) Verify(ctx context.Context) (int64, []byte, error) {
	rows, err := a.pool.Query(ctx, `SELECT id, at, actor, action, target, detail, prev_mac, mac FROM audit_log ORDER BY id`)
	if err != nil {
		return 0, nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	prev := genesis
	var n int64
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.PrevMAC, &e.MAC); err != nil {
			return n, nil, fmt.Errorf("read audit log: %w", err)
		}
		if !hmac.Equal(e.PrevMAC, prev) {
			return n, nil, &ChainBreak{ID: e.ID, Reason: "does not follow the entry before it (an entry was deleted, inserted or reordered)"}
		}
		if !hmac.Equal(a.mac(&e), e.MAC) {
			return n, nil, &ChainBreak{ID: e.ID, Reason: "its MAC does not match its content (the entry was edited)"}
		}
		prev = e.MAC
		n++
	}
	if err := rows.Err(); err != nil {
		return n, nil, fmt.Errorf("read audit log: %w", err)
	}
	return n, prev, nil
}
