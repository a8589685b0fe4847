package kinehook

import (
	"errors"
	"fmt"
)

// Error codes, used in API error bodies {"error": {"code", "message"}} and by
// the client package.
const (
	ECONFLICT     = "conflict"
	EINTERNAL     = "internal"
	EINVALID      = "invalid"           // well-formed but invalid input (422)
	EMALFORMED    = "malformed"         // not parseable (400)
	ENOTFOUND     = "not_found"         // 404
	EUNAUTHORIZED = "unauthorized"      // 401
	EFORBIDDEN    = "forbidden"         // 403: the key may not do this
	ETOOLARGE     = "payload_too_large" // 413
	ERATELIMITED  = "rate_limited"      // 429
	EUNAVAILABLE  = "unavailable"       // 503
	// ESTORAGEFULL: the server's store cannot write because its disk (or
	// PostgreSQL's) is full; nothing of the request was stored (503).
	ESTORAGEFULL = "storage_full"
	// ESTOREUNAVAILABLE: the server's store cannot be reached or cannot
	// write (connection lost, read-only or failing disk); retry later (503).
	ESTOREUNAVAILABLE = "store_unavailable"
)

// Error is a domain error with a machine-readable code and a message meant for
// the user. Field, when set, names the input field at fault.
type Error struct {
	Code    string
	Message string
	Field   string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Message)
	}
	return e.Code + ": " + e.Message
}

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of err: an *Error's message, or
// a generic text for internal errors (their details go to the log only).
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrNotFound is returned by stores when a record does not exist (or belongs to
// another project).
var ErrNotFound = &Error{Code: ENOTFOUND, Message: "not found"}
