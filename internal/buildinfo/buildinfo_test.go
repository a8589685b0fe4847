package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/kinehook/kinehook", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tc := range []struct {
		name     string
		bi       *debug.BuildInfo
		ok       bool
		override string
		want     Info
	}{
		{"module version", bi, true, "", Info{Version: "v1.4.0", Commit: "abc123", CommitTime: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.26.8"}},
		{"ldflags wins", bi, true, "v9.9.9", Info{Version: "v9.9.9", Commit: "abc123", CommitTime: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.26.8"}},
		{"devel", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true, "", Info{Version: "(devel)", GoVersion: "go1.26.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi, tc.ok, tc.override); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if got := fromBuildInfo(nil, false, ""); got.Version != "(devel)" || got.GoVersion == "" {
		t.Errorf("no build info: %+v", got)
	}
}

func TestProduct(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	for in, want := range map[string]string{"v1.2.3": "v1.2.3", "v0.0.0-20261203-abc+dirty": "v0.0.0-20261203-abc+dirty", "a b/(c)": "a-b--c-"} {
		version = in
		if got := Product(); got != want {
			t.Errorf("Product() of %q = %q, want %q", in, got, want)
		}
	}
	version = "" // a test binary's main module has no version
	if got := Product(); got != "devel" && got != Version() {
		t.Errorf("Product() = %q for version %q", got, Version())
	}
}
