package main

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// apiGroups returns the command groups (commands with subcommands) of root.
func apiGroups(root *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, c := range root.Commands() {
		if c.HasSubCommands() {
			out = append(out, c)
		}
	}
	return out
}

// TestCLIGroupsRejectUnknownSubcommands: a mistyped subcommand of any group
// is an error naming it and listing the valid ones; the group alone prints
// its help.
func TestCLIGroupsRejectUnknownSubcommands(t *testing.T) {
	groups := apiGroups(cliRoot())
	var names []string
	for _, g := range groups {
		names = append(names, g.Name())
	}
	if want := []string{"deliveries", "endpoints", "events", "keys", "live", "media", "portal", "projects", "sources"}; !slices.Equal(names, want) {
		t.Fatalf("groups %v, want %v", names, want)
	}
	for _, g := range groups {
		var valid []string
		for _, sub := range g.Commands() {
			valid = append(valid, sub.Name())
		}
		calls := [][]string{{"frobnicate"}, {"delete-all", "x"}, {"lst"}, {"frobnicate", "--json"}}
		for _, args := range calls {
			for _, name := range append([]string{g.Name()}, g.Aliases...) {
				t.Run(name+" "+strings.Join(args, " "), func(t *testing.T) {
					out, _, err := cliExec(t, cliRoot(), append([]string{name}, args...)...)
					if err == nil {
						t.Fatalf("no error; stdout:\n%s", out)
					}
					msg := err.Error()
					if want := `unknown command "` + args[0] + `" for "kinehook ` + g.Name() + `"`; !strings.Contains(msg, want) {
						t.Errorf("error %q does not contain %q", msg, want)
					}
					for _, v := range valid {
						if !strings.Contains(msg, v) {
							t.Errorf("error %q does not list the valid subcommand %s", msg, v)
						}
					}
					if _, sugg, _ := strings.Cut(msg, "Did you mean this?\n"); args[0] == "lst" && !strings.Contains(sugg, "\tlist\n") { // media also suggests get
						t.Errorf("no suggestion for lst: %q", msg)
					}
					if out != "" {
						t.Errorf("printed on stdout:\n%s", out)
					}
				})
			}
		}
		t.Run(g.Name()+" alone", func(t *testing.T) {
			out, _, err := cliExec(t, cliRoot(), g.Name())
			if err != nil || !strings.Contains(out, "Available Commands:") {
				t.Fatalf("%s without a subcommand: %v\n%s", g.Name(), err, out)
			}
		})
	}
	// The real command tree uses the same groups.
	for _, g := range apiGroups(rootCmd) {
		if slices.Contains(names, g.Name()) && g.RunE == nil {
			t.Errorf("kinehook %s is not built with apiGroup", g.Name())
		}
	}
}

// TestCLIGroupExitStatus runs the real kinehook main (this test binary,
// re-executed) and checks the exit status: 1 for a mistyped subcommand, 0
// for a group's help.
func TestCLIGroupExitStatus(t *testing.T) {
	if os.Getenv("KINEHOOK_CLI_MAIN") == "1" {
		os.Args = append([]string{"kinehook"}, strings.Fields(os.Getenv("KINEHOOK_CLI_ARGS"))...)
		main()
		os.Exit(0)
	}
	cases := []struct {
		args string
		code int
		want string
	}{
		{"projects remove x", 1, `unknown command "remove" for "kinehook projects"`},
		{"keys frobnicate", 1, `unknown command "frobnicate" for "kinehook keys"`},
		{"deliveries lst", 1, `unknown command "lst" for "kinehook deliveries"`},
		{"endpoints frobnicate", 1, `unknown command "frobnicate" for "kinehook endpoints"`},
		{"events frobnicate", 1, `unknown command "frobnicate" for "kinehook events"`},
		{"projects", 0, "Available Commands:"},
		{"events list --limit -1", 1, "--limit -1"},
		{"events send-batch --file - --chunk-size 0", 1, "--chunk-size 0"},
	}
	for _, tc := range cases {
		t.Run(tc.args, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCLIGroupExitStatus$")
			cmd.Env = append(os.Environ(), "KINEHOOK_CLI_MAIN=1", "KINEHOOK_CLI_ARGS="+tc.args,
				"KINEHOOK_URL=http://127.0.0.1:1", "KINEHOOK_API_KEY=kh_x", "KINEHOOK_PROJECT=prj_x")
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.code || !strings.Contains(string(out), tc.want) {
				t.Fatalf("kinehook %s: exit %d, want %d; output:\n%s", tc.args, code, tc.code, out)
			}
		})
	}
}
