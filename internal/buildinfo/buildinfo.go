// Package buildinfo names the running build: its version, commit and Go
// version, read from the binary's build information, so that `go install`
// and `go run` builds name themselves as well as a release built with make.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// version is set by the release build:
// -ldflags "-X github.com/kinehook/kinehook/internal/buildinfo.version=v1.2.3".
// It wins over the module version the toolchain records.
var version string

// commit is set by builds without a .git to stamp from (the Dockerfile,
// make release): -ldflags "-X github.com/kinehook/kinehook/internal/buildinfo.commit=abc123".
// Like version, it wins over what the toolchain recorded.
var commit string

// Info is what a build says of itself.
type Info struct {
	// Version is the -ldflags version when set; else the main module's
	// version as the toolchain recorded it: a tag or pseudo-version for
	// `go install module@version` and, since Go 1.24, for `go build` in a
	// git checkout (with "+dirty" for uncommitted changes), "(devel)" when
	// none is known (`go run`, a build outside version control).
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from ("" unknown).
	Commit string `json:"commit,omitempty"`
	// CommitTime is the revision's time, RFC 3339 ("" unknown).
	CommitTime string `json:"commit_time,omitempty"`
	// Modified reports uncommitted changes in the build's work tree.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

// Get returns the running binary's Info.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	info := fromBuildInfo(bi, ok, version)
	if commit != "" {
		info.Commit = commit
	}
	return info
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool, override string) Info {
	info := Info{Version: "(devel)", GoVersion: runtime.Version()}
	if ok {
		if bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.time":
				info.CommitTime = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if override != "" {
		info.Version = override
	}
	return info
}

// Version is Get().Version.
func Version() string { return Get().Version }

// Product is the version as an HTTP product version (User-Agent:
// "kinehook/<Product>"): "(devel)" is a comment there, so it becomes
// "devel", and anything but token characters becomes "-".
func Product() string {
	v := Version()
	if v == "(devel)" {
		return "devel"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return '-'
		}
		return r
	}, v)
}
