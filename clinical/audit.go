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

// auditLockKey serialises appends so the chain stays a chain.
const auditLockKey int64 = 0x4169726c6f636b02

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

// Append writes one entry at the head of the chain and returns it. Under the
// append lock it also checks that the entry this process last appended or
// saw is still there; CheckHead reports it if not.
func (a *Audit) Append(ctx context.Context, actor, action, target string, detail any) (*Entry, error) {
	d, err := json.Marshal(detail)
	if err != nil {
		return nil, fmt.Errorf("audit detail: %w", err)
	}
	e := &Entry{Actor: actor, Action: action, Target: target, Detail: string(d)}
	var wentBack string
	err = pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, auditLockKey); err != nil {
			return err
		}
		// Read after the lock: every mark set so far is committed, so it
		// is visible here unless someone removed it.
		known := a.knownMark()
		var head chainMark
		var macAtKnown []byte
		err := tx.QueryRow(ctx, `SELECT id, coalesce(seq, 0), mac, (SELECT mac FROM audit_log WHERE id = $1)
FROM audit_log ORDER BY id DESC LIMIT 1`, known.id).Scan(&head.id, &head.seq, &head.mac, &macAtKnown)
		if errors.Is(err, pgx.ErrNoRows) {
			head = chainMark{mac: genesis}
		} else if err != nil {
			return err
		}
		wentBack = known.wentBackTo(head, macAtKnown)
		e.PrevMAC, e.Seq = head.mac, head.seq+1
		// nextval only now, under the lock: ids grow in chain order.
		if err := tx.QueryRow(ctx, `SELECT nextval('audit_log_id_seq')`).Scan(&e.ID); err != nil {
			return err
		}
		e.At = a.now().UTC().Truncate(time.Microsecond)
		e.MAC = a.mac(e)
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (id, seq, at, actor, action, target, detail, prev_mac, mac)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, e.ID, e.Seq, e.At, e.Actor, e.Action, e.Target, e.Detail, e.PrevMAC, e.MAC)
		return err
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	if wentBack != "" {
		a.wentBack = append(a.wentBack, wentBack)
	}
	if err != nil {
		return nil, fmt.Errorf("append audit entry: %w", err)
	}
	// Entries of concurrent appends may finish in any order: keep the newest.
	if wentBack != "" || e.Seq > a.known.seq {
		a.known = chainMark{id: e.ID, seq: e.Seq, mac: e.MAC}
	}
	return e, nil
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
FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT id, seq, mac FROM audit_log ORDER BY id DESC LIMIT 1) AS h ON true`,
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
	if (now != "" && a.known.id == known.id && a.known.seq == known.seq) || head.seq > a.known.seq {
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
	rows, err := a.pool.Query(ctx, `SELECT id, seq, at, actor, action, target, detail, prev_mac, mac FROM audit_log ORDER BY id`)
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
