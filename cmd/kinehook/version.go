package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/delivery"
)

// commit is the source revision the binary was built from. Release builds
// (make release, the Dockerfile) set it with
// -ldflags "-X main.commit=..." because a container build has no .git for
// Go's own VCS stamp; without it, the stamp is used when present.
var commit = ""

func init() { rootCmd.AddCommand(newVersionCmd()) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and platform of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			return err
		},
	}
}

// versionLine is `kinehook VERSION (commit C, goX.Y.Z, os/arch)`; the
// version is the one the User-Agent of every delivery carries.
func versionLine() string {
	return fmt.Sprintf("kinehook %s (commit %s, %s, %s/%s)", delivery.Version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildCommit is commit, else the VCS revision Go stamped into the build
// (with "-dirty" for modified trees), else "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
