package clinical

import (
	"bytes"
	"image/png"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/pquerna/otp"
)

// renderLogin shows the login page with an error (a refused login).
func (s *Server) renderLogin(c echo.Context, status int, msg string) {
	s.renderLoginPage(c, status, msg, "")
}

// renderLoginPage shows the login page with an error or a neutral message.
func (s *Server) renderLoginPage(c echo.Context, status int, errMsg, info string) {
	if err := s.render(c, status, "login", nil, &page{Title: "Log in", Error: errMsg, Info: info}); err != nil {
		s.log.ErrorContext(c.Request().Context(), "write login page", "error", err.Error())
	}
}

// loggedOut is what the login page confirms after a logout, by the
// ?done= value the logout redirects with (fixed texts: the URL carries
// nothing else).
var loggedOut = map[string]string{
	"logout":     "You are logged out.",
	"everywhere": "You are logged out on every device: all your sessions have ended.",
}

func (s *Server) handleLoginPage(c echo.Context, sess *Session) error {
	if sess != nil {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	info := loggedOut[c.QueryParam("done")]
	if c.Get("expired") == true {
		info = errSessionExpired.Msg
	}
	s.renderLoginPage(c, http.StatusOK, "", info)
	return nil
}

func (s *Server) handleLogin(c echo.Context, old *Session) error {
	ctx := c.Request().Context()
	st, stage, err := s.accounts.Login(ctx, LoginAttempt{
		Email: postValue(c, "email"), Password: postValue(c, "password"), Code: postValue(c, "code"), Addr: c.RealIP(),
	})
	if err != nil {
		switch code := codeOf(err); code {
		case CodeUnauthorised, CodeForbidden, CodeThrottled, CodeBusy:
			s.retryAfter(c, code)
			s.renderLogin(c, statusOf(code), err.Error())
			return nil
		}
		return err
	}
	// Rotate: whatever session this browser had ends; a new token is issued.
	if old != nil {
		if err := s.accounts.EndSession(ctx, old.TokenHash); err != nil {
			return err
		}
	}
	token, err := s.accounts.NewSession(ctx, st, stage)
	if err != nil {
		return err
	}
	setCookie(c, sessionCookie, token)
	if stage == StageEnrol {
		return c.Redirect(http.StatusSeeOther, "/enrol")
	}
	return c.Redirect(http.StatusSeeOther, "/")
}

// enrolStartPage is the first enrolment step: email and the two codes.
func (s *Server) enrolStartPage(c echo.Context, status int, msg string) error {
	return s.render(c, status, "enrol-start", nil, &page{Title: "Set up your account", Error: msg})
}

// handleEnrolStart checks the email and the two enrolment codes and, when
// they are right, opens an enrolment session that shows the new TOTP
// secret and asks for a password and a first code.
func (s *Server) handleEnrolStart(c echo.Context, old *Session) error {
	ctx := c.Request().Context()
	st, err := s.accounts.StartEnrol(ctx, postValue(c, "email"), postValue(c, "create_code"), postValue(c, "approve_code"), c.RealIP())
	switch code := codeOf(err); code {
	case CodeInvalid, CodeThrottled, CodeBusy:
		s.retryAfter(c, code)
		return s.enrolStartPage(c, statusOf(code), err.Error())
	}
	if err != nil {
		return err
	}
	if old != nil {
		if err := s.accounts.EndSession(ctx, old.TokenHash); err != nil {
			return err
		}
	}
	token, err := s.accounts.NewSession(ctx, st, StageEnrol)
	if err != nil {
		return err
	}
	setCookie(c, sessionCookie, token)
	return c.Redirect(http.StatusSeeOther, "/enrol")
}

// enrolView is the enrolment page.
type enrolView struct {
	Secret string // grouped in fours for typing
	URI    string
	Advice string // the password rule (PasswordAdvice)
}

func (s *Server) enrolPage(c echo.Context, sess *Session, status int, msg string) error {
	secret, err := s.accounts.EnrolTOTPSecret(sess.Staff)
	if err != nil {
		return err
	}
	var groups []string
	for i := 0; i < len(secret); i += 4 {
		groups = append(groups, secret[i:min(i+4, len(secret))])
	}
	return s.render(c, status, "enrol", sess, &page{Title: "Set up your account", Error: msg,
		Data: enrolView{Secret: strings.Join(groups, " "), URI: TOTPURI(sess.Staff.Email, secret), Advice: PasswordAdvice}})
}

// handleEnrolPage is the enrolment page: without a session the form for
// the email and codes, in an enrolment session the TOTP secret and the
// password form; a full session has nothing to enrol.
func (s *Server) handleEnrolPage(c echo.Context, sess *Session) error {
	switch {
	case sess == nil:
		return s.enrolStartPage(c, http.StatusOK, "")
	case sess.Stage != StageEnrol:
		return c.Redirect(http.StatusSeeOther, "/")
	}
	return s.enrolPage(c, sess, http.StatusOK, "")
}

// handleEnrolQR renders the otpauth URI as a QR code on the server, so the
// page needs no script.
func (s *Server) handleEnrolQR(c echo.Context, sess *Session) error {
	secret, err := s.accounts.EnrolTOTPSecret(sess.Staff)
	if err != nil {
		return err
	}
	key, err := otp.NewKeyFromURL(TOTPURI(sess.Staff.Email, secret))
	if err != nil {
		return err
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "image/png", b.Bytes())
}

func (s *Server) handleEnrol(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	err := s.accounts.Enrol(ctx, sess.Staff, postValue(c, "password"), postValue(c, "confirm"), postValue(c, "code"), c.RealIP())
	switch code := codeOf(err); code {
	case CodeInvalid, CodeThrottled, CodeBusy:
		s.retryAfter(c, code)
		return s.enrolPage(c, sess, statusOf(code), err.Error())
	}
	if err != nil {
		return err
	}
	// A new session for the enrolled account: the enrolment one ends.
	if err := s.accounts.EndSession(ctx, sess.TokenHash); err != nil {
		return err
	}
	token, err := s.accounts.NewSession(ctx, sess.Staff, StageFull)
	if err != nil {
		return err
	}
	setCookie(c, sessionCookie, token)
	return c.Redirect(http.StatusSeeOther, "/")
}

func (s *Server) handleLogout(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	if err := s.accounts.EndSession(ctx, sess.TokenHash); err != nil {
		return err
	}
	if _, err := s.audit.Append(ctx, sess.Staff.Actor(), "logout", sess.Staff.Actor(), map[string]any{}); err != nil {
		return err
	}
	clearCookie(c, sessionCookie)
	return c.Redirect(http.StatusSeeOther, "/login?done=logout")
}

func (s *Server) handleLogoutEverywhere(c echo.Context, sess *Session) error {
	ctx := c.Request().Context()
	n, err := s.accounts.EndAllSessions(ctx, sess.Staff.ID)
	if err != nil {
		return err
	}
	if _, err := s.audit.Append(ctx, sess.Staff.Actor(), "logout.everywhere", sess.Staff.Actor(), map[string]any{"sessions": n}); err != nil {
		return err
	}
	clearCookie(c, sessionCookie)
	return c.Redirect(http.StatusSeeOther, "/login?done=everywhere")
}

func (s *Server) handleHome(c echo.Context, sess *Session) error {
	if sess.Staff.ReadsData() {
		return c.Redirect(http.StatusSeeOther, "/submissions")
	}
	if sess.Staff.Has(RoleAdmin) {
		return c.Redirect(http.StatusSeeOther, "/admin/staff")
	}
	return s.render(c, http.StatusOK, "error", sess, &page{Title: "No access", Error: "Your account has no role yet."})
}
