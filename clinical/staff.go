package clinical

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/mail"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/airlockhq/airlock/shared/pg"
)

// The staff roles. A staff member holds a set of them; only clinician and
// viewer see patient data, so a pure admin manages staff and nothing else.
const (
	RoleAdmin     = "admin"
	RoleClinician = "clinician"
	RoleViewer    = "viewer"
)

// AllRoles lists the roles in display order.
var AllRoles = []string{RoleAdmin, RoleClinician, RoleViewer}

// Account statuses.
const (
	StatusPending  = "pending"
	StatusActive   = "active"
	StatusDisabled = "disabled"
)

// Staff is one staff account.
type Staff struct {
	ID                 int64
	Email              string
	Roles              []string
	Status             string
	PasswordHash       string
	MustChangePassword bool
	TOTPSecretEnc      []byte
	TOTPEnrolled       bool
	CreatedAt          time.Time
	RequestedBy        *int64
	ApprovedBy         *int64
}

// Has reports whether the account holds role.
func (s *Staff) Has(role string) bool { return slices.Contains(s.Roles, role) }

// ReadsData reports whether the account may see patient data at all.
func (s *Staff) ReadsData() bool { return s.Has(RoleClinician) || s.Has(RoleViewer) }

// Actor names the account in the audit log.
func (s *Staff) Actor() string { return fmt.Sprintf("staff:%d", s.ID) }

// Session is a logged-in browser.
type Session struct {
	TokenHash []byte
	Stage     string // "enrol" (first login: set password, confirm TOTP) or "full"
	CreatedAt time.Time
	Staff     *Staff
}

// Session stages.
const (
	StageEnrol = "enrol"
	StageFull  = "full"
)

// Accounts is staff accounts, logins and sessions over the clinical
// database, with every change written to the audit log.
type Accounts struct {
	pool      *pgxpool.Pool
	audit     *Audit
	passwords *Passwords
	totp      *TOTPBox
	throttle  []byte // HMAC key for the throttling keys
	enrolKey  []byte // HMAC key for the stored enrolment codes
	now       func() time.Time

	// SessionIdle and SessionMax are the idle and absolute session timeouts.
	SessionIdle, SessionMax time.Duration
	// EnrolCodeTTL is how long an enrolment code stays valid.
	EnrolCodeTTL time.Duration
	// Throttling: more than AccountLimit failures for one account, or
	// AddrLimit from one address, within ThrottleWindow lock logins out.
	ThrottleWindow          time.Duration
	AccountLimit, AddrLimit int

	// slots bounds concurrent logins and enrolments (each hashes once);
	// Shed counts the attempts refused because every slot was taken.
	slots chan struct{}
	Shed  atomic.Int64
}

// NewAccounts wires the account service.
func NewAccounts(pool *pgxpool.Pool, audit *Audit, secret SecretKey, passwords *Passwords, now func() time.Time) *Accounts {
	return &Accounts{
		pool: pool, audit: audit, passwords: passwords, totp: NewTOTPBox(secret),
		throttle: secret.derive("login throttle v1"), enrolKey: secret.derive("enrolment code v1"), now: now,
		EnrolCodeTTL: 72 * time.Hour,
		SessionIdle:  15 * time.Minute, SessionMax: 12 * time.Hour,
		ThrottleWindow: 15 * time.Minute, AccountLimit: 5, AddrLimit: 20,
		slots: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
}

const staffColumns = `id, email, roles, status, password_hash, must_change_password, totp_secret_enc,
  totp_enrolled, created_at, requested_by, approved_by`

func scanStaff(row pgx.Row) (*Staff, error) {
	var s Staff
	err := row.Scan(&s.ID, &s.Email, &s.Roles, &s.Status, &s.PasswordHash, &s.MustChangePassword,
		&s.TOTPSecretEnc, &s.TOTPEnrolled, &s.CreatedAt, &s.RequestedBy, &s.ApprovedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNotFound
	}
	return &s, err
}

// NormaliseEmail checks an email address and returns its lower-case form.
func NormaliseEmail(email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || len(email) > 254 {
		return "", errorf(CodeInvalid, "Enter an email address such as name@clinic.example.")
	}
	return email, nil
}

// CheckRoles validates a role set.
func CheckRoles(roles []string) ([]string, error) {
	var out []string
	for _, r := range roles {
		if !slices.Contains(AllRoles, r) {
			return nil, errorf(CodeInvalid, "Unknown role.")
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, errorf(CodeInvalid, "Choose at least one role.")
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(AllRoles, a) - slices.Index(AllRoles, b) })
	return out, nil
}

// Enrolment codes. An account is enrolled by its owner, who needs two
// one-time codes: the create code, shown to whoever created or reset the
// account, and the approve code, shown to the different admin who approved
// it. Neither admin alone holds anything that logs in or enrols.
const (
	CodeKindCreate  = "create"
	CodeKindApprove = "approve"
)

// Enrolment is the enrolment code (or, for the first admin from the command
// line, both codes) an account's owner needs: shown once, stored only as an
// HMAC.
type Enrolment struct {
	Staff       *Staff
	CreateCode  string
	ApproveCode string
	Expires     time.Time
}

// newEnrolCode makes 100 random bits as 20 base32 characters in groups of
// four ("abcd-efgh-ijkl-mnop-qrst").
func newEnrolCode() (string, error) {
	b := make([]byte, 13)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	raw := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:20]
	var g []string
	for i := 0; i < len(raw); i += 4 {
		g = append(g, raw[i:i+4])
	}
	return strings.Join(g, "-"), nil
}

// codeHash is the stored form of an enrolment code: an HMAC bound to the
// account and the kind, over the code as typed without spaces and dashes.
func (a *Accounts) codeHash(staffID int64, kind, code string) []byte {
	norm := strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, strings.ToLower(strings.TrimSpace(code)))
	m := hmac.New(sha256.New, a.enrolKey)
	fmt.Fprintf(m, "%d\x00%s\x00%s", staffID, kind, norm)
	return m.Sum(nil)
}

// issueCode makes a fresh code of kind for an account, replacing any
// earlier one of that kind, and returns it with its expiry.
func (a *Accounts) issueCode(ctx context.Context, tx pgx.Tx, staffID int64, kind string, issuedBy *int64) (string, time.Time, error) {
	code, err := newEnrolCode()
	if err != nil {
		return "", time.Time{}, err
	}
	exp := a.now().Add(a.EnrolCodeTTL)
	if _, err := tx.Exec(ctx, `INSERT INTO staff_enrolment_codes (staff_id, kind, code_hash, issued_by, expires_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (staff_id, kind) DO UPDATE SET code_hash = EXCLUDED.code_hash, issued_by = EXCLUDED.issued_by, expires_at = EXCLUDED.expires_at`,
		staffID, kind, a.codeHash(staffID, kind, code), issuedBy, exp); err != nil {
		return "", time.Time{}, fmt.Errorf("issue enrolment code: %w", err)
	}
	return code, exp, nil
}

// bootstrapLockKey serialises account creation, so two concurrent
// `staff add` runs cannot both become the first active admin.
const bootstrapLockKey int64 = 0x4169726c6f636b03

// Create makes an account, with no password and no TOTP secret: its owner
// enrols (StartEnrol, Enrol). With bootstrap set (the `staff add`
// command), an admin account is created active when no active admin exists
// yet, and both enrolment codes go to the operator, who is that admin;
// every other account is created pending, with only the create code, to be
// approved by an admin other than requestedBy, who gets the approve code.
// actor is who asked, for the audit log.
func (a *Accounts) Create(ctx context.Context, actor string, requestedBy *int64, email string, roles []string, bootstrap bool) (*Enrolment, error) {
	email, err := NormaliseEmail(email)
	if err != nil {
		return nil, err
	}
	if roles, err = CheckRoles(roles); err != nil {
		return nil, err
	}
	en := &Enrolment{}
	// The account, its codes and its audit entry commit together.
	err = a.audit.InTx(ctx, func(tx *AuditTx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, bootstrapLockKey); err != nil {
			return err
		}
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM staff WHERE email = $1)`, email).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return errorf(CodeConflict, "An account with that email exists already.")
		}
		status := StatusPending
		if bootstrap && slices.Contains(roles, RoleAdmin) {
			var admins bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM staff WHERE status = 'active' AND 'admin' = ANY (roles))`).Scan(&admins); err != nil {
				return err
			}
			if !admins {
				status = StatusActive
			}
		}
		// No password hash and no TOTP secret: nothing logs in until the
		// owner enrols.
		s, err := scanStaff(tx.QueryRow(ctx, `INSERT INTO staff (email, roles, status, password_hash, totp_secret_enc, requested_by)
VALUES ($1, $2, $3, '', '\x'::bytea, $4) RETURNING `+staffColumns, email, roles, status, requestedBy))
		if err != nil {
			return err
		}
		en.Staff = s
		if en.CreateCode, en.Expires, err = a.issueCode(ctx, tx, s.ID, CodeKindCreate, requestedBy); err != nil {
			return err
		}
		if status == StatusActive {
			if en.ApproveCode, _, err = a.issueCode(ctx, tx, s.ID, CodeKindApprove, requestedBy); err != nil {
				return err
			}
		}
		_, err = tx.Append(ctx, actor, "staff.create", s.Actor(), map[string]any{"roles": s.Roles, "status": s.Status})
		return err
	})
	if err != nil {
		return nil, err
	}
	return en, nil
}

// Get returns one account.
func (a *Accounts) Get(ctx context.Context, id int64) (*Staff, error) {
	return scanStaff(a.pool.QueryRow(ctx, `SELECT `+staffColumns+` FROM staff WHERE id = $1`, id))
}

// List returns every account, oldest first.
func (a *Accounts) List(ctx context.Context) ([]*Staff, error) {
	rows, err := a.pool.Query(ctx, `SELECT `+staffColumns+` FROM staff ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list staff: %w", err)
	}
	defer rows.Close()
	var out []*Staff
	for rows.Next() {
		s, err := scanStaff(rows)
		if err != nil {
			return nil, fmt.Errorf("list staff: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// throttleKey is an HMAC of what is counted, so the table holds neither
// email addresses of failed attempts nor client addresses in clear.
func (a *Accounts) throttleKey(kind, v string) []byte {
	m := hmac.New(sha256.New, a.throttle)
	m.Write([]byte(kind + "\x00" + v))
	return m.Sum(nil)
}

// Advisory lock classes (the two-key form, apart from bootstrapLockKey's
// one-key space) that serialise attempts per account and per address.
const (
	lockClassAccount int32 = 0x41690001
	lockClassAddr    int32 = 0x41690002
)

func lockKey(k []byte) int32 { return int32(binary.BigEndian.Uint32(k[:4])) }

// countAttempt admits one login or enrolment attempt, before any secret is
// checked: under per-account and per-address locks it counts the recent
// failures and, below both limits, writes this attempt as a failure in the
// same transaction. Concurrent attempts therefore see each other, and no
// more than AccountLimit of them (AddrLimit per address) get to check a
// secret within the window, however they are timed. It returns the
// attempt's row, which a successful login deletes again (only that row:
// a success clears neither the account's nor the address's other failures).
func (a *Accounts) countAttempt(ctx context.Context, accountKey, addrKey []byte) (id int64, limitReached string, err error) {
	since := a.now().Add(-a.ThrottleWindow)
	err = pg.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		// Always account first, then address: one order, no deadlock.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClassAccount, lockKey(accountKey)); err != nil {
			return fmt.Errorf("lock login attempts: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockClassAddr, lockKey(addrKey)); err != nil {
			return fmt.Errorf("lock login attempts: %w", err)
		}
		var byAccount, byAddr int
		err := tx.QueryRow(ctx, `SELECT
  (SELECT count(*) FROM login_failures WHERE account_key = $1 AND at > $3),
  (SELECT count(*) FROM login_failures WHERE addr_key = $2 AND at > $3)`, accountKey, addrKey, since).Scan(&byAccount, &byAddr)
		if err != nil {
			return fmt.Errorf("read login failures: %w", err)
		}
		if byAccount >= a.AccountLimit || byAddr >= a.AddrLimit {
			return errorf(CodeThrottled, "Too many failed logins. Wait %d minutes, then try again.", int(a.ThrottleWindow.Minutes()))
		}
		// This attempt is the one that reaches a limit: the caller audits
		// that once, so a flood of refused attempts adds nothing to the log.
		switch {
		case byAccount+1 >= a.AccountLimit:
			limitReached = "account"
		case byAddr+1 >= a.AddrLimit:
			limitReached = "address"
		}
		return tx.QueryRow(ctx, `INSERT INTO login_failures (account_key, addr_key, at) VALUES ($1, $2, $3) RETURNING id`,
			accountKey, addrKey, a.now()).Scan(&id)
	})
	return id, limitReached, err
}

// admitted is an attempt that was counted and holds a hash slot.
type admitted struct {
	id           int64  // its login_failures row, deleted if it succeeds
	limitReached string // "account" or "address" when this attempt reached a limit
	release      func() // gives the hash slot back
}

// admit counts an attempt (refusing it when throttled) and then takes a
// hash slot for it. A throttled attempt never holds a slot, so a flood of
// refused attempts cannot crowd out real ones, and it is not audited (the
// metrics count it), so a flood does not grow the audit log either. An
// attempt shed for want of a slot is forgiven: it was never checked.
func (a *Accounts) admit(ctx context.Context, accountKey, addrKey []byte) (admitted, error) {
	id, limitReached, err := a.countAttempt(ctx, accountKey, addrKey)
	if err != nil {
		return admitted{}, err
	}
	release, err := a.hashSlot()
	if err != nil {
		if ferr := a.forgiveAttempt(ctx, id); ferr != nil {
			return admitted{}, ferr
		}
		return admitted{}, err
	}
	return admitted{id: id, limitReached: limitReached, release: release}, nil
}

// failed audits a failed attempt (action+".failure" with its reason) and,
// when this failure is the one that reached a limit, action+".throttled"
// once: the log shows where a lock-out begins, not every refusal after it.
func (a *Accounts) failed(ctx context.Context, at admitted, action, actor, target, reason string) error {
	if _, err := a.audit.Append(ctx, actor, action+".failure", target, map[string]any{"reason": reason}); err != nil {
		return err
	}
	if at.limitReached != "" {
		if _, err := a.audit.Append(ctx, actor, action+".throttled", target, map[string]any{"limit": at.limitReached}); err != nil {
			return err
		}
	}
	return nil
}

// forgiveAttempt deletes the row of an attempt that succeeded.
func (a *Accounts) forgiveAttempt(ctx context.Context, id int64) error {
	if _, err := a.pool.Exec(ctx, `DELETE FROM login_failures WHERE id = $1`, id); err != nil {
		return fmt.Errorf("clear login attempt: %w", err)
	}
	return nil
}

// errBusy answers an attempt that finds every password-hashing slot taken.
var errBusy = &Error{Code: CodeBusy, Msg: "Too many logins at once. Try again in a few seconds."}

// hashSlot takes one of the slots that bound how many logins and
// enrolments hash at once. When all are taken it does not wait: the
// attempt is refused at once (errBusy, counted in Shed), so a burst queues
// neither goroutines nor argon2 memory.
func (a *Accounts) hashSlot() (release func(), err error) {
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	default:
		a.Shed.Add(1)
		return nil, errBusy
	}
}

// LoginAttempt is what the login form posts.
type LoginAttempt struct {
	Email, Password, Code string
	Addr                  string // client address, for throttling only
}

// Login checks a login and, when it succeeds, returns the account and the
// stage of the session to create (StageFull: an account that has not
// enrolled cannot log in, it enrols through StartEnrol).
func (a *Accounts) Login(ctx context.Context, in LoginAttempt) (*Staff, string, error) {
	email := strings.ToLower(strings.TrimSpace(in.Email))
	accountKey, addrKey := a.throttleKey("account", email), a.throttleKey("addr", throttleAddr(in.Addr))
	attempt, err := a.admit(ctx, accountKey, addrKey)
	if err != nil {
		return nil, "", err
	}
	defer attempt.release()
	// From here the attempt is counted as a failure; only success forgives it.
	fail := func(target, reason string, shown error) (*Staff, string, error) {
		if err := a.failed(ctx, attempt, "login", "anonymous", target, reason); err != nil {
			return nil, "", err
		}
		return nil, "", shown
	}
	if len(in.Password) > MaxPasswordLength*4 {
		return fail("", "password-too-long", errBadLogin)
	}
	s, err := scanStaff(a.pool.QueryRow(ctx, `SELECT `+staffColumns+` FROM staff WHERE email = $1`, email))
	if codeOf(err) == CodeNotFound {
		a.passwords.Verify(dummyHash(), in.Password) // same time as a known account
		return fail("", "unknown-account", errBadLogin)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read account: %w", err)
	}
	if s.PasswordHash == "" || !s.TOTPEnrolled {
		// Not enrolled: no password logs in; the owner enrols at /enrol.
		a.passwords.Verify(dummyHash(), in.Password)
		return fail(s.Actor(), "not-enrolled", errBadLogin)
	}
	ok, err := a.passwords.Verify(s.PasswordHash, in.Password)
	if err != nil {
		return nil, "", fmt.Errorf("account %d: %w", s.ID, err)
	}
	if !ok {
		return fail(s.Actor(), "password", errBadLogin)
	}
	switch s.Status {
	case StatusDisabled:
		return fail(s.Actor(), "disabled", errBadLogin)
	case StatusPending:
		return fail(s.Actor(), "pending", errorf(CodeForbidden, "Your account is waiting for approval by an administrator."))
	}
	if strings.TrimSpace(in.Code) == "" {
		return fail(s.Actor(), "code-missing", errBadLogin)
	}
	reused, err := a.useTOTP(ctx, s, in.Code, false)
	if err != nil {
		return nil, "", err
	}
	if reused != "" {
		return fail(s.Actor(), reused, errBadLogin)
	}
	stage := StageFull
	if err := a.forgiveAttempt(ctx, attempt.id); err != nil {
		return nil, "", err
	}
	if _, err := a.audit.Append(ctx, s.Actor(), "login.success", s.Actor(), map[string]any{"stage": stage}); err != nil {
		return nil, "", err
	}
	return s, stage, nil
}

// useTOTP checks code against the account's secret and, when it matches,
// records its time step so the same code (or an older one) never works
// again. It returns "" on success, else the failure reason for the audit
// log ("code" or "code-reused"). With enrol set it only succeeds for an
// account not yet enrolled, and marks it enrolled.
func (a *Accounts) useTOTP(ctx context.Context, s *Staff, code string, enrol bool) (string, error) {
	secret, err := a.totp.Open(s.ID, s.TOTPSecretEnc)
	if err != nil {
		return "", fmt.Errorf("account %d: %w", s.ID, err)
	}
	step := matchTOTP(secret, strings.TrimSpace(code), a.now())
	if step == 0 {
		return "code", nil
	}
	// The conditional update is the replay check, atomic across requests
	// and replicas: a step at or below the last one used is refused.
	tag, err := a.pool.Exec(ctx, `UPDATE staff SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2 AND totp_enrolled = $3`,
		s.ID, step, !enrol)
	if err != nil {
		return "", fmt.Errorf("record TOTP step: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return "code-reused", nil
	}
	return "", nil
}

// EnrolTOTPSecret returns the account's TOTP secret, which the enrolment
// page shows (as a QR code and as text) until the account is enrolled.
func (a *Accounts) EnrolTOTPSecret(s *Staff) (string, error) {
	if s.TOTPEnrolled || len(s.TOTPSecretEnc) == 0 {
		return "", errForbidden
	}
	return a.totp.Open(s.ID, s.TOTPSecretEnc)
}

// Enrol finishes an enrolment StartEnrol began: the owner's own password
// is set, and a code from the authenticator proves it holds the secret.
func (a *Accounts) Enrol(ctx context.Context, s *Staff, password, confirm, code, addr string) error {
	if s.TOTPEnrolled {
		return errorf(CodeConflict, "This account is enrolled already.")
	}
	if password != confirm {
		return errorf(CodeInvalid, "The two passwords are not the same.")
	}
	if err := CheckPassword(password, s.Email); err != nil {
		return &Error{Code: CodeInvalid, Msg: capitalise(err.Error()) + "."}
	}
	// Every attempt counts as a failed login until it succeeds, so the
	// enrolment session alone does not buy unlimited guesses at the code.
	accountKey, addrKey := a.throttleKey("account", s.Email), a.throttleKey("addr", throttleAddr(addr))
	attempt, err := a.admit(ctx, accountKey, addrKey)
	if err != nil {
		return err
	}
	defer attempt.release()
	reason, err := a.useTOTP(ctx, s, code, true)
	if err != nil {
		return err
	}
	if reason != "" {
		if err := a.failed(ctx, attempt, "enrol", s.Actor(), s.Actor(), reason); err != nil {
			return err
		}
		return errorf(CodeInvalid, "That authenticator code is not right. Wait for the next code and try again.")
	}
	if err := a.forgiveAttempt(ctx, attempt.id); err != nil {
		return err
	}
	hash, err := a.passwords.Hash(password)
	if err != nil {
		return err
	}
	// The enrolment and its audit entry commit together.
	return a.audit.InTx(ctx, func(tx *AuditTx) error {
		tag, err := tx.Exec(ctx, `UPDATE staff SET password_hash = $2, must_change_password = false, totp_enrolled = true
WHERE id = $1 AND NOT totp_enrolled AND status = 'active' AND totp_secret_enc = $3`, s.ID, hash, s.TOTPSecretEnc)
		if err != nil {
			return fmt.Errorf("enrol account %d: %w", s.ID, err)
		}
		if tag.RowsAffected() == 0 {
			return errorf(CodeConflict, "The account changed meanwhile (an administrator may have reset it).")
		}
		_, err = tx.Append(ctx, s.Actor(), "staff.enrol", s.Actor(), map[string]any{})
		return err
	})
}

// errBadEnrolment is every wrong email or code at the start of enrolment.
var errBadEnrolment = &Error{Code: CodeInvalid, Msg: "The email or one of the codes is not right, or the codes have expired or been used. " +
	"If this keeps happening, ask an administrator to reset your account."}

// errCodesGone ends a StartEnrol whose codes another request used first.
var errCodesGone = errors.New("enrolment codes used meanwhile")

// StartEnrol begins an enrolment: the email and both enrolment codes of an
// active account that has not enrolled. Like a login it is counted first
// (and throttled). On success both codes are used up and a fresh TOTP
// secret is generated and stored sealed; the caller opens an enrolment
// session, which can only show that secret and call Enrol.
func (a *Accounts) StartEnrol(ctx context.Context, email, createCode, approveCode, addr string) (*Staff, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	accountKey, addrKey := a.throttleKey("account", email), a.throttleKey("addr", throttleAddr(addr))
	attempt, err := a.admit(ctx, accountKey, addrKey)
	if err != nil {
		return nil, err
	}
	defer attempt.release()
	fail := func(target, reason string) (*Staff, error) {
		if err := a.failed(ctx, attempt, "enrol", "anonymous", target, reason); err != nil {
			return nil, err
		}
		return nil, errBadEnrolment
	}
	s, err := scanStaff(a.pool.QueryRow(ctx, `SELECT `+staffColumns+` FROM staff WHERE email = $1`, email))
	if codeOf(err) == CodeNotFound {
		return fail("", "unknown-account")
	}
	if err != nil {
		return nil, fmt.Errorf("read account: %w", err)
	}
	switch {
	case s.Status != StatusActive:
		return fail(s.Actor(), s.Status)
	case s.TOTPEnrolled:
		return fail(s.Actor(), "enrolled")
	}
	rows, err := a.pool.Query(ctx, `SELECT kind, code_hash FROM staff_enrolment_codes WHERE staff_id = $1 AND expires_at > $2`, s.ID, a.now())
	if err != nil {
		return nil, fmt.Errorf("read enrolment codes: %w", err)
	}
	stored := map[string][]byte{}
	for rows.Next() {
		var kind string
		var h []byte
		if err := rows.Scan(&kind, &h); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read enrolment codes: %w", err)
		}
		stored[kind] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read enrolment codes: %w", err)
	}
	createHash, approveHash := a.codeHash(s.ID, CodeKindCreate, createCode), a.codeHash(s.ID, CodeKindApprove, approveCode)
	okCreate := hmac.Equal(stored[CodeKindCreate], createHash)
	okApprove := hmac.Equal(stored[CodeKindApprove], approveHash)
	if !okCreate || !okApprove {
		return fail(s.Actor(), "codes")
	}
	key, err := NewTOTPKey(email)
	if err != nil {
		return nil, err
	}
	sealed, err := a.totp.Seal(s.ID, key.Secret())
	if err != nil {
		return nil, err
	}
	// Using the codes, storing the secret and the audit entry commit together.
	err = a.audit.InTx(ctx, func(tx *AuditTx) error {
		// Single use: of two requests with the same codes, one deletes them.
		tag, err := tx.Exec(ctx, `DELETE FROM staff_enrolment_codes WHERE staff_id = $1 AND expires_at > $4
  AND ((kind = 'create' AND code_hash = $2) OR (kind = 'approve' AND code_hash = $3))`, s.ID, createHash, approveHash, a.now())
		if err != nil {
			return fmt.Errorf("use enrolment codes: %w", err)
		}
		if tag.RowsAffected() != 2 {
			return errCodesGone
		}
		tag, err = tx.Exec(ctx, `UPDATE staff SET totp_secret_enc = $2, totp_last_step = 0
WHERE id = $1 AND status = 'active' AND NOT totp_enrolled`, s.ID, sealed)
		if err != nil {
			return fmt.Errorf("store TOTP secret: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return errCodesGone
		}
		_, err = tx.Append(ctx, s.Actor(), "enrol.start", s.Actor(), map[string]any{})
		return err
	})
	if errors.Is(err, errCodesGone) {
		return fail(s.Actor(), "codes-used")
	}
	if err != nil {
		return nil, err
	}
	if err := a.forgiveAttempt(ctx, attempt.id); err != nil {
		return nil, err
	}
	s.TOTPSecretEnc = sealed
	return s, nil
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// NewSession starts a session and returns the cookie token. Only the token's
// SHA-256 is stored.
func (a *Accounts) NewSession(ctx context.Context, s *Staff, stage string) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := encodeToken(raw)
	h := sha256.Sum256([]byte(token))
	now := a.now()
	if _, err := a.pool.Exec(ctx, `INSERT INTO staff_sessions (token_hash, staff_id, stage, created_at, last_seen_at)
VALUES ($1, $2, $3, $4, $4)`, h[:], s.ID, stage, now); err != nil {
		return "", fmt.Errorf("create session: %w", err)
	}
	return token, nil
}

// Session returns the live session of a cookie token, enforcing the idle
// and absolute timeouts and the account's status; anything else is
// errSessionExpired.
func (a *Accounts) Session(ctx context.Context, token string) (*Session, error) {
	if len(token) != tokenLen {
		return nil, errSessionExpired
	}
	h := sha256.Sum256([]byte(token))
	var sess Session
	var lastSeen time.Time
	row := a.pool.QueryRow(ctx, `SELECT ss.stage, ss.created_at, ss.last_seen_at, `+prefixed("st.", staffColumns)+`
FROM staff_sessions ss JOIN staff st ON st.id = ss.staff_id WHERE ss.token_hash = $1`, h[:])
	var s Staff
	err := row.Scan(&sess.Stage, &sess.CreatedAt, &lastSeen, &s.ID, &s.Email, &s.Roles, &s.Status, &s.PasswordHash,
		&s.MustChangePassword, &s.TOTPSecretEnc, &s.TOTPEnrolled, &s.CreatedAt, &s.RequestedBy, &s.ApprovedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errSessionExpired
	}
	if err != nil {
		return nil, fmt.Errorf("read session: %w", err)
	}
	now := a.now()
	if now.Sub(lastSeen) > a.SessionIdle || now.Sub(sess.CreatedAt) > a.SessionMax || s.Status != StatusActive {
		if _, err := a.pool.Exec(ctx, `DELETE FROM staff_sessions WHERE token_hash = $1`, h[:]); err != nil {
			return nil, fmt.Errorf("end session: %w", err)
		}
		return nil, errSessionExpired
	}
	// Touch at most every 30 s: idle timeouts are minutes, writes are not free.
	if now.Sub(lastSeen) > 30*time.Second {
		if _, err := a.pool.Exec(ctx, `UPDATE staff_sessions SET last_seen_at = $2 WHERE token_hash = $1`, h[:], now); err != nil {
			return nil, fmt.Errorf("touch session: %w", err)
		}
	}
	sess.TokenHash = h[:]
	sess.Staff = &s
	return &sess, nil
}

func prefixed(p, cols string) string {
	fields := strings.Split(cols, ",")
	for i, f := range fields {
		fields[i] = p + strings.TrimSpace(f)
	}
	return strings.Join(fields, ", ")
}

// EndSession logs one browser out.
func (a *Accounts) EndSession(ctx context.Context, tokenHash []byte) error {
	_, err := a.pool.Exec(ctx, `DELETE FROM staff_sessions WHERE token_hash = $1`, tokenHash)
	return err
}

// EndAllSessions logs an account out everywhere and returns how many
// sessions ended.
func (a *Accounts) EndAllSessions(ctx context.Context, staffID int64) (int64, error) {
	tag, err := a.pool.Exec(ctx, `DELETE FROM staff_sessions WHERE staff_id = $1`, staffID)
	return tag.RowsAffected(), err
}

// Approve activates a pending account. The approver must be an active admin
// other than the account itself and other than whoever created or last
// changed it, so no single admin can give anyone (least of all themselves)
// access. For an account that has not enrolled, the approver is shown the
// approve code (the returned Enrolment; nil for an enrolled account), and
// may not be the admin who holds its create code.
func (a *Accounts) Approve(ctx context.Context, admin *Staff, id int64) (*Enrolment, error) {
	if !admin.Has(RoleAdmin) {
		return nil, errForbidden
	}
	if id == admin.ID {
		return nil, errorf(CodeForbidden, "Nobody can approve their own account.")
	}
	var en *Enrolment
	// The approval, the approve code and the audit entry commit together.
	err := a.audit.InTx(ctx, func(tx *AuditTx) error {
		// Every condition is checked by the UPDATE itself, on the row
		// version it changes: a Reset or role change committed meanwhile
		// (which makes its admin requested_by) is re-checked under the row
		// lock, so nobody approves a change they made, however the two
		// requests race.
		var enrolled bool
		var roles []string
		err := tx.QueryRow(ctx, `UPDATE staff SET status = 'active', approved_by = $2, approved_at = $3
WHERE id = $1 AND status = 'pending' AND id <> $2 AND requested_by IS DISTINCT FROM $2
  AND EXISTS (SELECT 1 FROM staff ap WHERE ap.id = $2 AND ap.status = 'active' AND 'admin' = ANY (ap.roles))
  AND NOT EXISTS (SELECT 1 FROM staff_enrolment_codes c WHERE c.staff_id = $1 AND c.kind = 'create' AND c.issued_by = $2)
RETURNING roles, totp_enrolled`, id, admin.ID, a.now()).Scan(&roles, &enrolled)
		if err != nil {
			return err
		}
		if !enrolled {
			en = &Enrolment{}
			if en.ApproveCode, en.Expires, err = a.issueCode(ctx, tx, id, CodeKindApprove, &admin.ID); err != nil {
				return err
			}
		}
		_, err = tx.Append(ctx, admin.Actor(), "staff.approve", fmt.Sprintf("staff:%d", id), map[string]any{"roles": roles})
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		s, gerr := a.Get(ctx, id)
		switch {
		case gerr != nil:
			return nil, gerr
		case s.RequestedBy != nil && *s.RequestedBy == admin.ID:
			return nil, errorf(CodeForbidden, "Another administrator must approve an account you created or changed.")
		case s.Status != StatusPending:
			return nil, errorf(CodeConflict, "Only a pending account can be approved.")
		}
		return nil, errorf(CodeForbidden, "Another administrator must approve this account: you hold its other enrolment code.")
	}
	if err != nil {
		return nil, fmt.Errorf("approve account %d: %w", id, err)
	}
	if en != nil {
		if en.Staff, err = a.Get(ctx, id); err != nil {
			return nil, err
		}
	}
	return en, nil
}

// change applies an administrative change to another account, puts it back
// to pending approval (disable: to disabled) and ends its sessions.
func (a *Accounts) change(ctx context.Context, admin *Staff, id int64, action string, detail map[string]any, sql string, args ...any) error {
	return a.changeThen(ctx, admin, id, action, detail, nil, sql, args...)
}

// changeThen is change with then run in the same transaction, after the
// change and before the audit entry.
func (a *Accounts) changeThen(ctx context.Context, admin *Staff, id int64, action string, detail map[string]any,
	then func(tx *AuditTx) error, sql string, args ...any) error {
	if !admin.Has(RoleAdmin) {
		return errForbidden
	}
	if id == admin.ID {
		return errorf(CodeForbidden, "Ask another administrator to change your own account.")
	}
	if _, err := a.Get(ctx, id); err != nil {
		return err
	}
	// The change, the end of its sessions and the audit entry commit together.
	return a.audit.InTx(ctx, func(tx *AuditTx) error {
		if _, err := tx.Exec(ctx, sql, append([]any{id, admin.ID}, args...)...); err != nil {
			return fmt.Errorf("%s account %d: %w", action, id, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE staff_id = $1`, id); err != nil {
			return fmt.Errorf("%s account %d: end sessions: %w", action, id, err)
		}
		if then != nil {
			if err := then(tx); err != nil {
				return err
			}
		}
		_, err := tx.Append(ctx, admin.Actor(), action, fmt.Sprintf("staff:%d", id), detail)
		return err
	})
}

// SetRoles changes another account's roles; it then waits for approval by
// a different admin.
func (a *Accounts) SetRoles(ctx context.Context, admin *Staff, id int64, roles []string) error {
	roles, err := CheckRoles(roles)
	if err != nil {
		return err
	}
	return a.change(ctx, admin, id, "staff.roles", map[string]any{"roles": roles},
		`UPDATE staff SET roles = $3, status = 'pending', requested_by = $2, approved_by = NULL, approved_at = NULL WHERE id = $1`, roles)
}

// Disable shuts another account out until it is reset and approved again.
func (a *Accounts) Disable(ctx context.Context, admin *Staff, id int64) error {
	return a.change(ctx, admin, id, "staff.disable", map[string]any{},
		`UPDATE staff SET status = 'disabled', requested_by = $2 WHERE id = $1`)
}

// Reset takes another account's password and TOTP secret away (for a lost
// phone or a forgotten password, or to re-enable it), puts it back to
// pending, and issues a new create code to the resetting admin; a different
// admin approves it and gets the approve code; the owner enrols again.
func (a *Accounts) Reset(ctx context.Context, admin *Staff, id int64) (*Enrolment, error) {
	en := &Enrolment{}
	// The reset, its new create code and its audit entry commit together.
	err := a.changeThen(ctx, admin, id, "staff.reset", map[string]any{}, func(tx *AuditTx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM staff_enrolment_codes WHERE staff_id = $1`, id); err != nil {
			return fmt.Errorf("clear enrolment codes: %w", err)
		}
		var err error
		en.CreateCode, en.Expires, err = a.issueCode(ctx, tx, id, CodeKindCreate, &admin.ID)
		return err
	}, `UPDATE staff SET password_hash = '', must_change_password = true, totp_secret_enc = '\x'::bytea, totp_enrolled = false,
  totp_last_step = 0, status = 'pending', requested_by = $2, approved_by = NULL, approved_at = NULL WHERE id = $1`)
	if err != nil {
		return nil, err
	}
	if en.Staff, err = a.Get(ctx, id); err != nil {
		return nil, err
	}
	return en, nil
}

// Cleanup deletes expired sessions and login failures past the window.
func (a *Accounts) Cleanup(ctx context.Context) error {
	now := a.now()
	if _, err := a.pool.Exec(ctx, `DELETE FROM staff_sessions WHERE last_seen_at < $1 OR created_at < $2`,
		now.Add(-a.SessionIdle), now.Add(-a.SessionMax)); err != nil {
		return fmt.Errorf("delete expired sessions: %w", err)
	}
	if _, err := a.pool.Exec(ctx, `DELETE FROM login_failures WHERE at < $1`, now.Add(-a.ThrottleWindow)); err != nil {
		return fmt.Errorf("delete old login failures: %w", err)
	}
	if _, err := a.pool.Exec(ctx, `DELETE FROM staff_enrolment_codes WHERE expires_at < $1`, now); err != nil {
		return fmt.Errorf("delete expired enrolment codes: %w", err)
	}
	return nil
}
