package kinehook

import (
	"strings"
	"testing"
)

func TestValidTraceParent(t *testing.T) {
	const ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{ok, true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"", false},
		{"garbage", false},
		{ok + "-", false}, // version 00 is exactly 55 bytes
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g", false},
		{"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-" + strings.Repeat("a", 200), false},
	} {
		if got := ValidTraceParent(tc.in); got != tc.want {
			t.Errorf("ValidTraceParent(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := TraceIDOf(ok); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Errorf("TraceIDOf = %q", got)
	}
	if got := TraceIDOf("nope"); got != "" {
		t.Errorf("TraceIDOf(invalid) = %q", got)
	}
}

func TestValidTraceState(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", true},
		{"congo=t61rcWkgMzE", true},
		{"rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
		{"a=1, ,b=2", true},
		{"a", false},
		{"=1", false},
		{"a=", false},
		{"a=b=c", false},
		{"a=\x01", false},
		{"k=é", false},
		{strings.Repeat("a=b,", 33), false},
		{"k=" + strings.Repeat("v", 600), false},
	} {
		if got := ValidTraceState(tc.in); got != tc.want {
			t.Errorf("ValidTraceState(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzValidTraceParent: never panics, and what it accepts has the fields a
// receiver reads where it reads them.
func FuzzValidTraceParent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
	f.Add("ff-")
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidTraceParent(s) {
			if TraceIDOf(s) != "" {
				t.Fatalf("TraceIDOf(%q) of an invalid value", s)
			}
			return
		}
		if len(s) < 55 || len(s) > MaxTraceParent || s[2] != '-' || s[35] != '-' || s[52] != '-' {
			t.Fatalf("accepted %q", s)
		}
		if id := TraceIDOf(s); len(id) != 32 || strings.Trim(id, "0") == "" {
			t.Fatalf("trace id %q of %q", id, s)
		}
	})
}

// FuzzValidTraceState: never panics; what it accepts is printable ASCII
// within the size bound.
func FuzzValidTraceState(f *testing.F) {
	f.Add("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
	f.Add("a=1,,b")
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidTraceState(s) {
			return
		}
		if len(s) > MaxTraceState || !printableASCII(s) {
			t.Fatalf("accepted %q", s)
		}
	})
}
