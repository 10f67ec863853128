package clinical

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// staffView is the staff administration page.
type staffView struct {
	Staff []*Staff
	Roles []string
}

func (s *Server) staffPage(c echo.Context, sess *Session, status int, msg, notice string) error {
	list, err := s.accounts.List(c.Request().Context())
	if err != nil {
		return err
	}
	return s.render(c, status, "staff", sess, &page{Title: "Staff", Error: msg, Notice: notice,
		Data: staffView{Staff: list, Roles: AllRoles}})
}

func (s *Server) handleStaffPage(c echo.Context, sess *Session) error {
	return s.staffPage(c, sess, http.StatusOK, "", c.QueryParam("done"))
}

// staffFormError re-shows the staff page with a domain error's message.
func (s *Server) staffFormError(c echo.Context, sess *Session, err error) error {
	var de *Error
	if errors.As(err, &de) && de.Code != CodeUnauthorised {
		return s.staffPage(c, sess, statusOf(de.Code), de.Msg, "")
	}
	return err
}

func (s *Server) enrolmentPage(c echo.Context, sess *Session, status int, en *Enrolment) error {
	return s.render(c, status, "enrolment", sess, &page{Title: "Account " + en.Staff.Email, Data: en})
}

func (s *Server) handleStaffCreate(c echo.Context, sess *Session) error {
	form, err := c.FormParams()
	if err != nil {
		return errorf(CodeInvalid, "The form could not be read.")
	}
	me := sess.Staff.ID
	en, err := s.accounts.Create(c.Request().Context(), sess.Staff.Actor(), &me, form.Get("email"), form["role"], false)
	if err != nil {
		return s.staffFormError(c, sess, err)
	}
	return s.enrolmentPage(c, sess, http.StatusCreated, en)
}

func staffID(c echo.Context) (int64, error) {
	id, err := strconv.ParseInt(c.Param("sid"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return id, nil
}

func (s *Server) handleStaffApprove(c echo.Context, sess *Session) error {
	id, err := staffID(c)
	if err != nil {
		return err
	}
	en, err := s.accounts.Approve(c.Request().Context(), sess.Staff, id)
	if err != nil {
		return s.staffFormError(c, sess, err)
	}
	if en != nil { // not enrolled yet: show this admin's enrolment code
		return s.enrolmentPage(c, sess, http.StatusOK, en)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/staff?done=approved")
}

func (s *Server) handleStaffRoles(c echo.Context, sess *Session) error {
	id, err := staffID(c)
	if err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return errorf(CodeInvalid, "The form could not be read.")
	}
	if err := s.accounts.SetRoles(c.Request().Context(), sess.Staff, id, form["role"]); err != nil {
		return s.staffFormError(c, sess, err)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/staff?done=roles")
}

func (s *Server) handleStaffDisable(c echo.Context, sess *Session) error {
	id, err := staffID(c)
	if err != nil {
		return err
	}
	if err := s.accounts.Disable(c.Request().Context(), sess.Staff, id); err != nil {
		return s.staffFormError(c, sess, err)
	}
	return c.Redirect(http.StatusSeeOther, "/admin/staff?done=disabled")
}

func (s *Server) handleStaffReset(c echo.Context, sess *Session) error {
	id, err := staffID(c)
	if err != nil {
		return err
	}
	en, err := s.accounts.Reset(c.Request().Context(), sess.Staff, id)
	if err != nil {
		return s.staffFormError(c, sess, err)
	}
	return s.enrolmentPage(c, sess, http.StatusOK, en)
}

// auditView is a page of the audit log, newest first.
type auditView struct {
	Entries []auditRow
	Older   string // link to the next page
	Verify  string // result of a verification, when asked
	Broken  bool
}

const auditPageSize = 100

func (s *Server) auditPage(c echo.Context, sess *Session, verify string, broken bool) error {
	ctx := c.Request().Context()
	before := int64(1<<63 - 1)
	if v := c.QueryParam("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return errorf(CodeInvalid, "The page position is not valid.")
		}
		before = n
	}
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, action, target, detail FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2`,
		before, auditPageSize)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	v := auditView{Verify: verify, Broken: broken}
	var entries []Entry
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.ID, &e.At, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	rows.Close()
	if v.Entries, err = s.auditRows(ctx, entries); err != nil {
		return err
	}
	if len(v.Entries) == auditPageSize {
		v.Older = fmt.Sprintf("/admin/audit?before=%d", v.Entries[len(v.Entries)-1].ID)
	}
	if _, err := s.audit.Append(ctx, sess.Staff.Actor(), "audit.view", "", map[string]any{"before": before}); err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "audit", sess, &page{Title: "Audit log", Data: v})
}

func (s *Server) handleAuditPage(c echo.Context, sess *Session) error {
	return s.auditPage(c, sess, "", false)
}

func (s *Server) handleAuditVerify(c echo.Context, sess *Session) error {
	// Against the entries this process appended or saw: a cut tail fails
	// here too, not only in `clinical audit verify --head`.
	head, err := s.audit.Verify(c.Request().Context(), s.audit.Anchors()...)
	var brk *ChainBreak
	switch {
	case errors.As(err, &brk):
		return s.auditPage(c, sess, brk.Error(), true)
	case err != nil:
		return err
	}
	msg := fmt.Sprintf("Audit chain intact: %d entries.", head.Entries)
	if head.ID != 0 {
		msg = fmt.Sprintf("Audit chain intact: %d entries, head %s.", head.Entries, head)
	}
	return s.auditPage(c, sess, msg, false)
}

func (s *Server) handleErasePage(c echo.Context, sess *Session) error {
	return s.render(c, http.StatusOK, "erase", sess, &page{Title: "Erase a submission", Data: eraseView{}})
}

// eraseView is the erasure page: the receipt form, the confirmation that
// names the receipt found, or the receipt just erased.
type eraseView struct {
	Confirm    bool
	Receipt    string // as normalised (ABCD-EFGH-…)
	FormTitle  string
	ReceivedAt time.Time
	Erased     string // the receipt erased, once done
	ErasedID   int64  // its number in the audit log
}

// handleErase erases one submission on a patient's request, found by the
// receipt they quote; the admin never sees its content. The first post
// (the receipt alone) shows a confirmation naming the receipt, its form
// and when it came; the second (confirm=yes) erases it and says which
// receipt was erased. The answer is a page, not a redirect: the receipt
// stays out of URLs.
func (s *Server) handleErase(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	fail := func(err error) error {
		var de *Error
		if errors.As(err, &de) && (de.Code == CodeInvalid || de.Code == CodeNotFound) {
			return s.render(c, statusOf(de.Code), "erase", sess, &page{Title: "Erase a submission", Error: de.Msg, Data: eraseView{}})
		}
		return err
	}
	id, err := s.subs.IDByReceipt(ctx, postValue(c, "receipt"))
	if err != nil {
		return fail(err)
	}
	receipt, _ := NormaliseReceipt(postValue(c, "receipt"))
	if postValue(c, "confirm") != "yes" {
		v := eraseView{Confirm: true, Receipt: receipt}
		var formID string
		if err := s.pool.QueryRow(ctx, `SELECT form_id, received_at FROM submissions WHERE id = $1`, id).Scan(&formID, &v.ReceivedAt); err != nil {
			return fail(errorf(CodeNotFound, "No submission has that receipt."))
		}
		v.FormTitle = formID
		if q, ok := s.forms.Get(formID); ok && q.Title != "" {
			v.FormTitle = q.Title
		}
		return s.render(c, http.StatusOK, "erase", sess, &page{Title: "Erase a submission", Data: v})
	}
	// No record, no erasure: both commit together.
	if err := s.audit.InTx(ctx, func(tx *AuditTx) error { return s.subs.Erase(ctx, tx, sess.Staff.Actor(), id) }); err != nil {
		return fail(err)
	}
	return s.render(c, http.StatusOK, "erase", sess, &page{Title: "Erase a submission", Data: eraseView{Erased: receipt, ErasedID: id}})
}
