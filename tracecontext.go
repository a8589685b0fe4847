package kinehook

import "strings"

// W3C Trace Context headers (https://www.w3.org/TR/trace-context/): an event
// may be posted with them, keeps them, and every attempt to deliver it sends
// them on, so that a receiver continues the publisher's trace.
const (
	HeaderTraceParent = "traceparent"
	HeaderTraceState  = "tracestate"
)

// Bounds of what an event keeps of a trace context: a traceparent of version
// 00 is 55 bytes (later versions may append fields; they are kept up to
// MaxTraceParent), and a tracestate holds at most 32 list members, of which
// vendors are asked to keep at least 512 bytes.
const (
	MaxTraceParent = 128
	MaxTraceState  = 512
)

// ValidTraceParent reports whether s is a traceparent a receiver can use:
// version-traceid-parentid-flags in lowercase hex, a trace id and a parent id
// other than all zeros, a version other than ff, exactly 55 bytes for
// version 00 and, for a later version, "-" before anything it appends.
// A header that is not valid is ignored, never refused: tracing must not
// fail an ingest.
func ValidTraceParent(s string) bool {
	if len(s) < 55 || len(s) > MaxTraceParent {
		return false
	}
	if !lowerHex(s[0:2]) || s[0:2] == "ff" || s[2] != '-' || !lowerHex(s[3:35]) || s[35] != '-' ||
		!lowerHex(s[36:52]) || s[52] != '-' || !lowerHex(s[53:55]) {
		return false
	}
	if s[3:35] == "00000000000000000000000000000000" || s[36:52] == "0000000000000000" {
		return false
	}
	if s[0:2] == "00" {
		return len(s) == 55
	}
	return len(s) == 55 || (s[55] == '-' && printableASCII(s[55:]))
}

// ValidTraceState reports whether s is a tracestate worth sending on: at
// most MaxTraceState bytes and 32 list members of the form key=value in
// printable ASCII, without the characters the format reserves (",", "=" in
// a value's place). Empty members (",,") are allowed, as the format says.
func ValidTraceState(s string) bool {
	if len(s) > MaxTraceState || !printableASCII(s) {
		return false
	}
	members := 0
	for m := range strings.SplitSeq(s, ",") {
		m = strings.Trim(m, " \t")
		if m == "" {
			continue
		}
		members++
		k, v, ok := strings.Cut(m, "=")
		if !ok || k == "" || v == "" || len(k) > 256 || len(v) > 256 || strings.ContainsAny(k, " \t") ||
			strings.ContainsRune(v, '=') || v[len(v)-1] == ' ' {
			return false
		}
	}
	return members <= 32
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// TraceContext is the W3C trace context an event was posted with. Events
// and deliveries hold a pointer to one, nil for none, so that those without
// cost nothing more than that pointer.
type TraceContext struct {
	// Parent is the traceparent (ValidTraceParent).
	Parent string
	// State is the tracestate ("" for none).
	State string
}

// NewTraceContext returns the trace context of parent and state; nil when
// parent is "".
func NewTraceContext(parent, state string) *TraceContext {
	if parent == "" {
		return nil
	}
	return &TraceContext{Parent: parent, State: state}
}

// TraceParent is tc's traceparent ("" for nil).
func (tc *TraceContext) TraceParent() string {
	if tc == nil {
		return ""
	}
	return tc.Parent
}

// TraceState is tc's tracestate ("" for nil).
func (tc *TraceContext) TraceState() string {
	if tc == nil {
		return ""
	}
	return tc.State
}

// TraceIDOf returns the trace id of a valid traceparent ("" for any other).
func TraceIDOf(traceparent string) string {
	if !ValidTraceParent(traceparent) {
		return ""
	}
	return traceparent[3:35]
}
