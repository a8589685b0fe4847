package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/internal/buildinfo"
)

func init() {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this build",
		Long: `Print the build's version, the commit it was built from and the Go version
that built it, read from the binary's build information: a release's version
(set by make), else the module version the toolchain recorded (a tag or
pseudo-version for go install and go build in a checkout, "(devel)" for go run).
Deliveries name the same version in their User-Agent (kinehook/<version>).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.OutOrStdout(), buildinfo.Get(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: version, commit, commit_time, modified, go_version")
	rootCmd.AddCommand(cmd)
	rootCmd.Version = buildinfo.Version()
	rootCmd.SetVersionTemplate(versionText(buildinfo.Get()))
}

// printVersion prints info as text or JSON.
func printVersion(w io.Writer, info buildinfo.Info, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(info); err != nil {
			return fmt.Errorf("print version: %w", err)
		}
		return nil
	}
	_, err := io.WriteString(w, versionText(info))
	return err
}

// versionText is `kinehook version`'s text, also printed by --version.
func versionText(info buildinfo.Info) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kinehook %s\n", info.Version)
	if info.Commit != "" {
		fmt.Fprintf(&b, "commit:  %s", info.Commit)
		if info.Modified {
			b.WriteString(" (modified)")
		}
		b.WriteByte('\n')
	}
	if info.CommitTime != "" {
		fmt.Fprintf(&b, "date:    %s\n", info.CommitTime)
	}
	fmt.Fprintf(&b, "go:      %s\n", info.GoVersion)
	return b.String()
}
