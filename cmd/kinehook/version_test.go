package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kinehook/kinehook/internal/buildinfo"
)

// buildWith builds the binary with extra `go build` arguments and VCS
// stamping on (whatever GOFLAGS says).
func buildWith(t *testing.T, args ...string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "kinehook")
	cmd := exec.Command("go", append(append([]string{"build", "-o", bin}, args...), ".")...)
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func runBin(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kinehook %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// A binary built with go build names itself from its build information:
// `version` and `--version` print the same text, --json the same facts.
func TestVersionCommand(t *testing.T) {
	bin := buildWith(t)
	text := runBin(t, bin, "version")
	if alt := runBin(t, bin, "--version"); alt != text {
		t.Errorf("--version printed %q, version %q", alt, text)
	}
	var info buildinfo.Info
	if err := json.Unmarshal([]byte(runBin(t, bin, "version", "--json")), &info); err != nil {
		t.Fatalf("version --json: %v", err)
	}
	if info.GoVersion != runtime.Version() {
		t.Errorf("go_version %q, want %q", info.GoVersion, runtime.Version())
	}
	if !strings.HasPrefix(text, "kinehook "+info.Version+"\n") || !strings.Contains(text, "go:      "+info.GoVersion+"\n") {
		t.Errorf("version text %q does not match its JSON %+v", text, info)
	}
	// Go stamps VCS information when the module root holds a .git
	// directory (not in a git worktree, whose .git is a file).
	if st, err := os.Stat("../../.git"); err == nil && st.IsDir() {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatalf("git rev-parse: %v", err)
		}
		if info.Commit != strings.TrimSpace(string(head)) || !strings.Contains(text, "commit:  "+info.Commit) {
			t.Errorf("commit %q, want HEAD %s", info.Commit, head)
		}
		if info.Version == "(devel)" || info.Version == "" {
			t.Errorf("version %q: want the module's pseudo-version", info.Version)
		}
	} else if info.Version != "(devel)" || info.Commit != "" {
		t.Errorf("without VCS information: %+v, want (devel) and no commit", info)
	}
}

// The release build's -ldflags version wins over the build information.
func TestVersionLdflags(t *testing.T) {
	bin := buildWith(t, "-ldflags", "-X github.com/kinehook/kinehook/internal/buildinfo.version=v9.8.7-test")
	var info buildinfo.Info
	if err := json.Unmarshal([]byte(runBin(t, bin, "version", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != "v9.8.7-test" {
		t.Errorf("version %q, want the -ldflags one", info.Version)
	}
	if got := runBin(t, bin, "--version"); !strings.HasPrefix(got, "kinehook v9.8.7-test\n") {
		t.Errorf("--version: %q", got)
	}
}

func TestVersionText(t *testing.T) {
	got := versionText(buildinfo.Info{Version: "v1.2.3", Commit: "abc", Modified: true, CommitTime: "2026-12-01T00:00:00Z", GoVersion: "go1.26.8"})
	want := "kinehook v1.2.3\ncommit:  abc (modified)\ndate:    2026-12-01T00:00:00Z\ngo:      go1.26.8\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
