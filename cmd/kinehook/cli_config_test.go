package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCLIConfig saves the server, key and project with `kinehook config` and
// runs API commands without flags or environment; flags and the environment
// still win over the file, which only its owner can read.
func TestCLIConfig(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(t.Context(), "configured")
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv("KINEHOOK_CONFIG")

	if _, _, err := e.run(t, "projects", "list"); err == nil || !strings.Contains(err.Error(), "kinehook config set key") {
		t.Fatalf("without a key: %v, want advice naming `kinehook config set key`", err)
	}
	mustConfig(t, "set", "url", e.url)
	mustConfig(t, "set", "key", p.APIKey)
	if _, _, err := runConfig(t, "set", "url", "127.0.0.1:8080"); err == nil {
		t.Fatal("a URL without a scheme was saved")
	}
	if _, _, err := runConfig(t, "set", "colour", "blue"); err == nil || !strings.Contains(err.Error(), "url, key, project") {
		t.Fatalf("unknown setting: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode %v, want 0600 (it holds a key)", st.Mode().Perm())
	}

	// From the file alone: the project key's own project.
	out := e.must(t, "endpoints", "create", "--url", e.sink.URL+"/from-config", "--json")
	var ep struct{ URL string }
	if err := json.Unmarshal([]byte(out), &ep); err != nil || ep.URL != e.sink.URL+"/from-config" {
		t.Fatalf("endpoint made from the config: %v %s", err, out)
	}

	// The environment wins over the file.
	t.Setenv("KINEHOOK_API_KEY", "kh_not_a_real_key_at_all")
	if _, _, err := e.run(t, "projects", "list"); err == nil {
		t.Fatal("KINEHOOK_API_KEY did not override the saved key")
	}
	// And a flag over both.
	e.must(t, "projects", "list", "--key", p.APIKey)
	t.Setenv("KINEHOOK_API_KEY", "")

	show := mustConfig(t, "show", "--json")
	var shown struct{ Path, URL, Key string }
	if err := json.Unmarshal([]byte(show), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Path != path || shown.URL != e.url || strings.Contains(show, p.APIKey) || !strings.HasSuffix(shown.Key, "****") {
		t.Fatalf("config show: %s (key must be masked)", show)
	}
	mustConfig(t, "unset", "key")
	if _, _, err := e.run(t, "projects", "list"); err == nil {
		t.Fatal("unset key still used")
	}
}

// runConfig runs `kinehook config ARGS`.
func runConfig(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := &cobra.Command{Use: "kinehook", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newConfigCmd())
	return cliExec(t, root, append([]string{"config"}, args...)...)
}

// mustConfig runs `kinehook config ARGS` and fails the test on an error.
func mustConfig(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runConfig(t, args...)
	if err != nil {
		t.Fatalf("kinehook config %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}
