package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/jsonshape"
)

// CheckStrictText refuses what encoding/json would read without a word but
// other parsers read differently: bytes that are not UTF-8, an unpaired \u
// surrogate escape, a member name given twice.
func CheckStrictText(b []byte) error {
	malformed := func(msg string) error {
		return &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: msg}
	}
	if !utf8.Valid(b) {
		return malformed("request body is not UTF-8")
	}
	if at := jsonshape.LoneSurrogateAt(b); at >= 0 {
		return malformed(fmt.Sprintf("unpaired \\u surrogate escape at offset %d", at))
	}
	if k, dup := jsonshape.DuplicateKey(b); dup {
		return malformed(fmt.Sprintf("the key %q is given twice", k))
	}
	return nil
}

// CheckJSONDepth refuses JSON nested deeper than limit arrays/objects.
func CheckJSONDepth(b []byte, limit int) error {
	if depth, _ := jsonshape.Of(b); depth > limit {
		return &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: fmt.Sprintf("JSON is nested deeper than %d levels", limit)}
	}
	return nil
}

// JSONError turns an encoding/json decoding error into EMALFORMED (syntax)
// or EINVALID (a wrong or unknown field, named).
func JSONError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field == "" {
			return &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: "expected a JSON object"}
		}
		return &kinehook.Error{Code: kinehook.EINVALID, Field: te.Field, Message: fmt.Sprintf("%s must be a %s, not a JSON %s", te.Field, jsonKind(te.Type.String()), te.Value)}
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: fmt.Sprintf("malformed JSON: %v", err)}
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return &kinehook.Error{Code: kinehook.EINVALID, Message: fmt.Sprintf("a time must be RFC 3339, e.g. 2026-01-02T15:04:05Z: %v", err)}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		f = strings.Trim(f, `"`)
		return &kinehook.Error{Code: kinehook.EINVALID, Field: f, Message: fmt.Sprintf("unknown field %q", f)}
	}
	var ke *kinehook.Error
	if errors.As(err, &ke) {
		return ke
	}
	return &kinehook.Error{Code: kinehook.EMALFORMED, Field: "body", Message: fmt.Sprintf("malformed JSON: %v", err)}
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "struct"):
		return "object"
	case goType == "string", goType == "*string":
		return "string"
	case goType == "bool", goType == "*bool":
		return "boolean"
	case strings.Contains(goType, "int"), strings.Contains(goType, "float"):
		return "number"
	}
	return goType
}
