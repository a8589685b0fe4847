package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	nethttp "net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
	"github.com/kinehook/kinehook/internal/bodylimit"
	"github.com/kinehook/kinehook/internal/jsonshape"
	"github.com/kinehook/kinehook/internal/storehealth"
)

// Error codes the API adds to kinehook's for transport-level answers.
const (
	codeForbidden        = "forbidden"
	codeMethodNotAllowed = "method_not_allowed"
)

// errorBody is the envelope of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// statusOf maps an error code to its HTTP status.
func statusOf(code string) int {
	switch code {
	case kinehook.EINVALID:
		return nethttp.StatusUnprocessableEntity
	case kinehook.EMALFORMED:
		return nethttp.StatusBadRequest
	case kinehook.ENOTFOUND:
		return nethttp.StatusNotFound
	case kinehook.EUNAUTHORIZED:
		return nethttp.StatusUnauthorized
	case kinehook.ETOOLARGE:
		return nethttp.StatusRequestEntityTooLarge
	case kinehook.ERATELIMITED:
		return nethttp.StatusTooManyRequests
	case kinehook.EUNAVAILABLE, kinehook.ESTORAGEFULL, kinehook.ESTOREUNAVAILABLE:
		return nethttp.StatusServiceUnavailable
	case kinehook.ECONFLICT:
		return nethttp.StatusConflict
	case codeForbidden:
		return nethttp.StatusForbidden
	case codeMethodNotAllowed:
		return nethttp.StatusMethodNotAllowed
	default:
		return nethttp.StatusInternalServerError
	}
}

// writeError answers err as {"error": {"code","message","field"}} with the
// status of its code. Internal errors never show their details.
func writeError(w nethttp.ResponseWriter, err error) {
	var ke *kinehook.Error
	d := errorDetail{Code: kinehook.EINTERNAL, Message: "internal error"}
	if errors.As(err, &ke) {
		d = errorDetail{Code: ke.Code, Message: ke.Message, Field: ke.Field}
	}
	if d.Code == kinehook.EUNAUTHORIZED {
		w.Header().Set("WWW-Authenticate", `Bearer realm="kinehook"`)
	}
	status := statusOf(d.Code)
	if status == nethttp.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		// Nothing here is down for good: say when trying again makes sense.
		w.Header().Set("Retry-After", strconv.Itoa(int(storehealth.RetryAfter/time.Second)))
	}
	writeJSON(w, status, errorBody{Error: d})
}

// writeStatusError answers an error with an explicit status.
func writeStatusError(w nethttp.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// writeRateLimited answers 429 with Retry-After in whole seconds (at least 1);
// whose names what was limited ("this key", "requests without a valid key
// from this address").
func writeRateLimited(w nethttp.ResponseWriter, wait time.Duration, whose string) {
	secs := max(int(math.Ceil(wait.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeStatusError(w, nethttp.StatusTooManyRequests, kinehook.ERATELIMITED, fmt.Sprintf("API rate limit exceeded for %s; retry in %d s", whose, secs))
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeJSON answers v as JSON with status.
func writeJSON(w nethttp.ResponseWriter, status int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"internal error"}}` + "\n")
		status = nethttp.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// readBody reads the request body up to the configured limit; a larger body
// is a 413.
func (s *Server) readBody(w nethttp.ResponseWriter, r *nethttp.Request) ([]byte, error) {
	return readLimited(w, r, s.cfg.MaxBodyBytes)
}

// readLimited reads the request body up to limit bytes; a larger body is a
// 413, answered on a connection that then closes, after the refused body was
// drained (internal/bodylimit).
func readLimited(w nethttp.ResponseWriter, r *nethttp.Request, limit int64) ([]byte, error) {
	body, err := bodylimit.Read(w, r, limit)
	if err != nil {
		if _, ok := errors.AsType[*bodylimit.TooLargeError](err); ok {
			return nil, &kinehook.Error{Code: kinehook.ETOOLARGE, Message: fmt.Sprintf("request body is larger than %d bytes", limit)}
		}
		return nil, &kinehook.Error{Code: kinehook.EMALFORMED, Message: fmt.Sprintf("reading request body: %v", errors.Unwrap(err))}
	}
	return body, nil
}

// decodeJSON reads a JSON object body into v strictly: limits, depth, no
// unknown fields (named in the error), no trailing data.
func (s *Server) decodeJSON(w nethttp.ResponseWriter, r *nethttp.Request, v any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return s.decodeBytes(body, v)
}

// decodeBytes is decodeJSON on a body already read.
func (s *Server) decodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: "request body is empty; expected a JSON object"}
	}
	if err := app.CheckJSONDepth(body, s.cfg.MaxJSONDepth); err != nil {
		return err
	}
	if err := app.CheckStrictText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return app.JSONError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: "unexpected data after the JSON object"}
	}
	if at := jsonshape.NULAt(body); at >= 0 {
		// What these bodies hold is stored as text, which PostgreSQL
		// cannot hold U+0000 in: refused on every backend alike.
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "body", Message: fmt.Sprintf("text must not contain U+0000 (the \\u0000 escape at offset %d)", at)}
	}
	return nil
}
