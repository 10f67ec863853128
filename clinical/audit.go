package clinical

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/pg"
)

// Appends are serialised by the advisory lock 0x4169726c6f636b02
// (4713424295070755586) that audit_next and audit_append take in migration
// 000020, so the chain stays a chain; no Go code takes it.

// Audit appends to and verifies the audit log: an HMAC chain keyed by a key
// derived from CLINICAL_SECRET_KEY. The database owner can read and edit the
// rows but cannot recompute a MAC, so any edit, insertion or deletion inside
// the chain is detected. Cutting entries off the end, and letting the app
// carry on from there, leaves a chain that verifies on its own: nothing in
// the database survives its owner. That is caught against a head recorded
// outside the database (the heads `serve` logs, given to Verify as anchors)
// and, while a process runs, against the newest entry it appended or saw
// (CheckHead).
type Audit struct {
	pool  *pgxpool.Pool
	key   []byte // entries numbered by seq (migration 000012 on)
	keyV1 []byte // entries written before: their MACs do not cover seq
	now   func() time.Time

	mu sync.Mutex
	// known is the newest entry this process appended or read as the head;
	// it is set only after the entry's transaction committed.
	known chainMark
	// wentBack holds what Append noticed about the chain going backwards
	// since the last CheckHead, which reports it.
	wentBack []string
	// missing is how many numbers below the head CheckHead last found
	// without an entry, so each change is reported once.
	missing int64
	// lost holds the entries this process appended or saw that were later
	// found gone or replaced (at most maxLost): known moves on after a
	// report, but the admin page's Verify keeps failing on these for good.
	lost []chainMark
	// headLog, when set (LogHeads), receives the head after every append.
	headLog *slog.Logger
	// appended, when set, is told how many entries each committed InTx
	// appended (metrics).
	appended func(n int)
}

// LogHeads makes every committed append write the new chain head to log,
// the same `audit chain head` line `serve` writes periodically. Commands
// (export, staff add, retention, audit export) append a few entries and
// exit: without it, the entries they appended after serve's last logged
// head could be cut off unnoticed.
func (a *Audit) LogHeads(log *slog.Logger) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.headLog = log
}

// logHead writes h as the `audit chain head` JSON log line: the number of
// entries, the newest entry's id, number and MAC, and "head", the same as
// ID:MACHEX for `clinical audit verify --head`.
func logHead(log *slog.Logger, h ChainHead) {
	log.Info("audit chain head", "entries", h.Entries, "head_id", h.ID, "head_seq", h.Seq,
		"head_mac", hex.EncodeToString(h.MAC), "head", h.String())
}

// Anchors are the newest entry this process appended or saw as the head,
// and those it found gone or replaced before: the chain must hold each of
// them, with the same MAC.
// The admin page's Verify checks them, so a tail cut (and maybe continued)
// after this process saw it fails there too, not only in `clinical audit
// verify --head`.
func (a *Audit) Anchors() []Anchor {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Anchor
	for _, m := range append(slices.Clone(a.lost), a.known) {
		if m.id != 0 {
			out = append(out, Anchor{ID: m.id, MAC: m.mac})
		}
	}
	return out
}

// chainMark is one entry of the chain as this process saw it.
type chainMark struct {
	id, seq int64
	mac     []byte
}

// NewAudit binds the audit log to its key.
func NewAudit(pool *pgxpool.Pool, secret SecretKey) *Audit {
	return &Audit{pool: pool, key: secret.derive("audit chain v2"), keyV1: secret.derive("audit chain v1"), now: time.Now}
}

// Entry is one audit record. Target and Detail hold ids and actions, never
// patient content.
type Entry struct {
	ID int64
	// Seq numbers the entries 1, 2, 3… in chain order with no gaps (ids
	// come from a sequence and may skip values).
	Seq     int64
	At      time.Time
	Actor   string
	Action  string
	Target  string
	Detail  string // JSON object
	PrevMAC []byte
	MAC     []byte
}

// mac is the MAC of an entry: every field, the previous entry's MAC and the
// entry's number, under the chain key.
func (a *Audit) mac(e *Entry) []byte { return chainMAC(a.key, e, true) }

// macV1 is the MAC of an entry written before entries were numbered.
func (a *Audit) macV1(e *Entry) []byte { return chainMAC(a.keyV1, e, false) }

func chainMAC(key []byte, e *Entry, withSeq bool) []byte {
	m := hmac.New(sha256.New, key)
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		m.Write(n[:])
		m.Write(b)
	}
	n := make([]byte, 16, 24)
	binary.BigEndian.PutUint64(n[:8], uint64(e.ID))
	binary.BigEndian.PutUint64(n[8:], uint64(e.At.UnixMicro()))
	if withSeq {
		n = binary.BigEndian.AppendUint64(n, uint64(e.Seq))
	}
	field(e.PrevMAC)
	field(n)
	field([]byte(e.Actor))
	field([]byte(e.Action))
	field([]byte(e.Target))
	field([]byte(e.Detail))
	return m.Sum(nil)
}

// genesis is the PrevMAC of the first entry.
var genesis = make([]byte, sha256.Size)

// AuditTx is one transaction in which a change and the audit entries that
// record it commit together, or neither does. It is a pgx.Tx: store methods
// that take a pgx.Tx make their change through it.
//
// The first Append takes the chain's append lock, held until the
// transaction ends, so every other audited action waits meanwhile: keep the
// transaction short, and take the row locks the change needs (SELECT … FOR
// UPDATE) before appending, so that two transactions never wait for each
// other's locks.
type AuditTx struct {
	pgx.Tx
	audit    *Audit
	newest   *Entry   // the newest entry appended in this transaction
	wentBack []string // what the first Append noticed (see CheckHead)
	checked  bool
	appends  int // entries appended in this transaction
}

// InTx runs fn in one transaction and commits it when fn returns nil: the
// changes fn makes through tx and the entries it appends with tx.Append are
// written together or not at all.
func (a *Audit) InTx(ctx context.Context, fn func(tx *AuditTx) error) error {
	at := &AuditTx{audit: a}
	err := pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		at.Tx = tx
		return fn(at)
	})
	committed := err == nil
	a.mu.Lock()
	a.wentBack = append(a.wentBack, at.wentBack...)
	if len(at.wentBack) > 0 {
		a.loseKnown()
	}
	// Entries of concurrent transactions may commit in any order: keep the
	// newest.
	if e := at.newest; committed && e != nil && (len(at.wentBack) > 0 || e.Seq > a.known.seq) {
		a.known = chainMark{id: e.ID, seq: e.Seq, mac: e.MAC}
	}
	log, appended := a.headLog, a.appended
	a.mu.Unlock()
	if committed && appended != nil && at.appends > 0 {
		appended(at.appends)
	}
	if committed && log != nil && at.newest != nil {
		// The newest entry of a transaction that held the append lock to
		// its commit was the head when it committed.
		logHead(log, ChainHead{Entries: at.newest.Seq, ID: at.newest.ID, Seq: at.newest.Seq, MAC: at.newest.MAC})
	}
	return err
}

// Within appends to the audit log in tx, a transaction the caller owns and
// commits: its entries commit with the caller's change or not at all.
// Unlike InTx it cannot see the commit, so this process's mark of the
// newest entry (CheckHead) and LogHeads do not follow these entries; a
// command that uses it calls LogHead after committing.
func (a *Audit) Within(tx pgx.Tx) *AuditTx { return &AuditTx{Tx: tx, audit: a} }

// LogHead reads the chain head and, with LogHeads set, logs it as serve
// does.
func (a *Audit) LogHead(ctx context.Context) error {
	a.mu.Lock()
	log := a.headLog
	a.mu.Unlock()
	h, _, err := a.CheckHead(ctx)
	if err != nil {
		return err
	}
	if log != nil {
		logHead(log, h)
	}
	return nil
}

// Append writes one entry in a transaction of its own and returns it. Use
// InTx when the entry records a change: both must commit together.
func (a *Audit) Append(ctx context.Context, actor, action, target string, detail any) (*Entry, error) {
	var e *Entry
	err := a.InTx(ctx, func(tx *AuditTx) error {
		var err error
		e, err = tx.Append(ctx, actor, action, target, detail)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Append writes one entry at the head of the chain, in this transaction, and
// returns it. The database fixes the entry's id, number and previous MAC
// (audit_next and audit_append, migration 000020), so the app's login cannot
// choose them. Under the append lock the first Append of a transaction also
// checks that the entry this process last appended or saw is still there;
// CheckHead reports it if not.
func (t *AuditTx) Append(ctx context.Context, actor, action, target string, detail any) (*Entry, error) {
	d, err := json.Marshal(detail)
	if err != nil {
		return nil, fmt.Errorf("audit detail: %w", err)
	}
	e := &Entry{Actor: actor, Action: action, Target: target, Detail: string(d)}
	// audit_next takes the append lock, so the head stays the head until
	// this transaction ends.
	if err := t.QueryRow(ctx, `SELECT next_id, next_seq, prev_mac FROM audit_next()`).Scan(&e.ID, &e.Seq, &e.PrevMAC); err != nil {
		return nil, fmt.Errorf("append audit entry: %w", err)
	}
	if !t.checked {
		t.checked = true
		// Read after the lock: every mark set so far is committed, so it
		// is visible here unless someone removed it.
		known := t.audit.knownMark()
		var headID int64
		var macAtKnown []byte
		if err := t.QueryRow(ctx, `SELECT coalesce((SELECT id FROM audit_log WHERE seq = $2), 0), (SELECT mac FROM audit_log WHERE id = $1)`,
			known.id, e.Seq-1).Scan(&headID, &macAtKnown); err != nil {
			return nil, fmt.Errorf("append audit entry: %w", err)
		}
		if w := known.wentBackTo(chainMark{id: headID, seq: e.Seq - 1, mac: e.PrevMAC}, macAtKnown); w != "" {
			t.wentBack = append(t.wentBack, w)
		}
	}
	e.At = t.audit.now().UTC().Truncate(time.Microsecond)
	e.MAC = t.audit.mac(e)
	if _, err := t.Exec(ctx, `SELECT audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.ID, e.Seq, e.At, e.Actor, e.Action, e.Target, e.Detail, e.PrevMAC, e.MAC); err != nil {
		return nil, fmt.Errorf("append audit entry: %w", err)
	}
	t.newest = e
	t.appends++
	return e, nil
}

// maxLost bounds Audit.lost.
const maxLost = 16

// loseKnown keeps the known mark, just found gone or replaced, as an anchor
// the chain must hold. The caller holds a.mu.
func (a *Audit) loseKnown() {
	if a.known.id != 0 && len(a.lost) < maxLost {
		a.lost = append(a.lost, a.known)
	}
}

func (a *Audit) knownMark() chainMark {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.known
}

// wentBackTo compares k, an entry this process appended or saw, with the
// database's head now and the MAC found at k's id (nil when the id is
// gone). It describes how the chain went backwards, or returns "".
func (k chainMark) wentBackTo(head chainMark, macAtKnown []byte) string {
	switch {
	case k.id == 0:
		return ""
	case macAtKnown == nil:
		return fmt.Sprintf("entry %d (number %d), which this process appended or saw, is gone; the newest entry is now %d (number %d)",
			k.id, k.seq, head.id, head.seq)
	case !hmac.Equal(macAtKnown, k.mac):
		return fmt.Sprintf("entry %d (number %d), which this process appended or saw, has been replaced", k.id, k.seq)
	case head.seq < k.seq:
		return fmt.Sprintf("the newest entry is number %d, but this process saw number %d", head.seq, k.seq)
	}
	return ""
}

// ChainHead is the newest entry of the audit chain.
type ChainHead struct {
	Entries int64 // how many entries the log holds
	ID, Seq int64 // 0 for an empty log
	MAC     []byte
}

// String is the head as `serve` logs it and `clinical audit verify --head`
// takes it: ID:MACHEX ("" for an empty log).
func (h ChainHead) String() string {
	if h.ID == 0 {
		return ""
	}
	return fmt.Sprintf("%d:%x", h.ID, h.MAC)
}

// CheckHead reads the chain head and compares it with the newest entry this
// process appended or saw before. It returns the head and, when the chain
// went backwards (that entry is gone or replaced: entries were cut off the
// end, and maybe the chain continued from there; or the log holds fewer
// entries than the head's number), what happened, together with what Append
// noticed since the last call. It then remembers the head.
func (a *Audit) CheckHead(ctx context.Context) (ChainHead, []string, error) {
	// Read the mark before the query: the mark's entry committed before
	// the query's snapshot, so it must be in it.
	known := a.knownMark()
	var h ChainHead
	var macAtKnown []byte
	err := a.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_log), coalesce(h.id, 0), coalesce(h.seq, 0), h.mac,
  (SELECT mac FROM audit_log WHERE id = $1)
FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT id, seq, mac FROM audit_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1) AS h ON true`,
		known.id).Scan(&h.Entries, &h.ID, &h.Seq, &h.MAC, &macAtKnown)
	if err != nil {
		return ChainHead{}, nil, fmt.Errorf("read audit head: %w", err)
	}
	head := chainMark{id: h.ID, seq: h.Seq, mac: h.MAC}
	now := known.wentBackTo(head, macAtKnown)

	a.mu.Lock()
	defer a.mu.Unlock()
	wentBack := a.wentBack
	a.wentBack = nil
	if now != "" {
		wentBack = append(wentBack, now)
	}
	// Numbers are dense, so fewer entries than the head's number means
	// entries deleted from inside the chain.
	if missing := max(h.Seq-h.Entries, 0); missing != a.missing {
		if missing > a.missing {
			wentBack = append(wentBack, fmt.Sprintf("the log holds %d entries but the newest is number %d: %d entries were deleted",
				h.Entries, h.Seq, missing-a.missing))
		}
		a.missing = missing
	}
	// After a report, the head now is the new reference, unless an append
	// has moved the mark on meanwhile (it compared with the database itself).
	if now != "" && a.known.id == known.id && a.known.seq == known.seq {
		a.loseKnown()
		a.known = head
	} else if head.seq > a.known.seq {
		a.known = head
	}
	return h, wentBack, nil
}

// Anchor is an entry recorded outside the database, usually a chain head
// `serve` logged: Verify fails unless that entry is on the chain with
// exactly this MAC.
type Anchor struct {
	ID  int64
	MAC []byte
}

// ParseAnchor reads an anchor written ID:MACHEX, as `serve` logs the head.
func ParseAnchor(s string) (Anchor, error) {
	idText, macText, ok := strings.Cut(strings.TrimSpace(s), ":")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || id <= 0 {
		return Anchor{}, errors.New("must be ID:MACHEX, an entry id and its MAC as the `audit chain head` log line gives them")
	}
	mac, err := hex.DecodeString(macText)
	if err != nil || len(mac) != sha256.Size {
		return Anchor{}, errors.New("must be ID:MACHEX, where MACHEX is 64 hex digits")
	}
	return Anchor{ID: id, MAC: mac}, nil
}

// ChainBreak describes the first entry at which the chain fails.
type ChainBreak struct {
	ID     int64
	Reason string
}

func (b *ChainBreak) Error() string {
	return fmt.Sprintf("audit chain broken at entry %d: %s", b.ID, b.Reason)
}

// Verify walks the whole chain. It returns the head when the chain is intact
// and holds every anchor, or a *ChainBreak naming the first broken entry (or
// the first anchor that is not on the chain).
func (a *Audit) Verify(ctx context.Context, anchors ...Anchor) (ChainHead, error) {
	want := map[int64][][]byte{}
	for _, an := range anchors {
		want[an.ID] = append(want[an.ID], an.MAC)
	}
	tx, err := pg.BeginLongRead(ctx, a.pool) // the whole log in one statement
	if err != nil {
		return ChainHead{}, fmt.Errorf("read audit log: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, `SELECT id, seq, at, actor, action, target, detail, prev_mac, mac FROM audit_log ORDER BY id`)
	if err != nil {
		return ChainHead{}, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	prev := genesis
	var head ChainHead
	numbered := false // from the first entry whose MAC covers its number on, every one's must
	for rows.Next() {
		var e Entry
		var seq *int64
		if err := rows.Scan(&e.ID, &seq, &e.At, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.PrevMAC, &e.MAC); err != nil {
			return ChainHead{}, fmt.Errorf("read audit log: %w", err)
		}
		if seq != nil {
			e.Seq = *seq
		}
		if !hmac.Equal(e.PrevMAC, prev) {
			return ChainHead{}, &ChainBreak{ID: e.ID, Reason: "does not follow the entry before it (an entry was deleted, inserted or reordered)"}
		}
		switch {
		case seq != nil && hmac.Equal(a.mac(&e), e.MAC):
			numbered = true
		case !numbered && hmac.Equal(a.macV1(&e), e.MAC):
		default:
			return ChainHead{}, &ChainBreak{ID: e.ID, Reason: "its MAC does not match its content (the entry was edited)"}
		}
		if e.Seq != head.Entries+1 {
			return ChainHead{}, &ChainBreak{ID: e.ID, Reason: fmt.Sprintf("it is number %d in the chain but numbered %d (an entry was deleted, or the number edited)", head.Entries+1, e.Seq)}
		}
		for _, mac := range want[e.ID] {
			if !hmac.Equal(mac, e.MAC) {
				return ChainHead{}, &ChainBreak{ID: e.ID, Reason: "it is not the entry a logged head names with this id (entries were cut off the end and the chain continued)"}
			}
		}
		delete(want, e.ID)
		prev = e.MAC
		head = ChainHead{Entries: head.Entries + 1, ID: e.ID, Seq: e.Seq, MAC: e.MAC}
	}
	if err := rows.Err(); err != nil {
		return ChainHead{}, fmt.Errorf("read audit log: %w", err)
	}
	if len(want) > 0 {
		missing := slices.Min(slices.Collect(maps.Keys(want)))
		reason := fmt.Sprintf("a logged head names it, but the chain ends at entry %d (entries were cut off the end)", head.ID)
		if missing < head.ID {
			reason = fmt.Sprintf("a logged head names it, but it is not on the chain, which ends at entry %d (entries were cut off the end and the chain continued)", head.ID)
		}
		return ChainHead{}, &ChainBreak{ID: missing, Reason: reason}
	}
	return head, nil
}

// newCommandAudit is the audit log of a command (export, staff add,
// retention run, audit export): it logs the chain head after every append,
// so what a command appended after serve's last logged head is covered by
// a logged head too.
func newCommandAudit(pool *pgxpool.Pool, secret SecretKey, log *slog.Logger) *Audit {
	a := NewAudit(pool, secret)
	a.LogHeads(log)
	return a
}
