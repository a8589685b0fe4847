package app

import (
	"testing"

	"github.com/kinehook/kinehook"
)

func TestCheckTrace(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name string
		in   kinehook.TraceContext
		want *kinehook.TraceContext
	}{
		{"none", kinehook.TraceContext{}, nil},
		{"valid", kinehook.TraceContext{Parent: tp, State: "a=1"}, &kinehook.TraceContext{Parent: tp, State: "a=1"}},
		{"invalid parent drops the state too", kinehook.TraceContext{Parent: "00-x", State: "a=1"}, nil},
		{"invalid state alone is dropped", kinehook.TraceContext{Parent: tp, State: "a"}, &kinehook.TraceContext{Parent: tp}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := CheckTrace(tc.in)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("CheckTrace(%+v) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}
