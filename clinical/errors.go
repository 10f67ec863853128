package clinical

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrorCode classifies a domain error; the HTTP layer maps each code to a
// status in one place (statusOf) and stores never know about HTTP.
type ErrorCode int

// The domain error codes.
const (
	CodeInvalid      ErrorCode = iota + 1 // bad input: 422
	CodeNotFound                          // 404
	CodeConflict                          // state changed or not allowed now: 409
	CodeForbidden                         // authenticated but not allowed: 403
	CodeUnauthorised                      // not (or no longer) logged in: 401
	CodeThrottled                         // too many attempts: 429
	CodeBusy                              // no capacity now, try again shortly: 503
)

// statusOf is the one map from domain code to HTTP status. A code it does
// not know (an internal error has code 0) is 500, never 0.
func statusOf(code ErrorCode) int {
	switch code {
	case CodeInvalid:
		return http.StatusUnprocessableEntity
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeForbidden:
		return http.StatusForbidden
	case CodeUnauthorised:
		return http.StatusUnauthorized
	case CodeThrottled:
		return http.StatusTooManyRequests
	case CodeBusy:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is a domain error whose message is safe to show to the user.
type Error struct {
	Code ErrorCode
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errorf(code ErrorCode, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// codeOf returns the domain code of err, or 0 for an internal error.
func codeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

var (
	// errBadLogin is every wrong email, password or code: one message, so a
	// failed login does not tell which part was wrong.
	errBadLogin = &Error{Code: CodeUnauthorised, Msg: "The email, password or authenticator code is not right."}
	// errSessionExpired is a missing, unknown, idle or too old session.
	errSessionExpired = &Error{Code: CodeUnauthorised, Msg: "Your session has ended. Please log in again."}
	errForbidden      = &Error{Code: CodeForbidden, Msg: "Your role does not allow this."}
	errNotFound       = &Error{Code: CodeNotFound, Msg: "Not found."}
)
