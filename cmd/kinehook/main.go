// Command kinehook is the webhook platform for video platforms: the sender
// (serve), the receiver tools (listen, trigger) and a CLI over the API.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the kinehook command; each subcommand adds itself in its file's init.
var rootCmd = &cobra.Command{
	Use:           "kinehook",
	Short:         "Webhooks for video platforms: send, receive, inspect",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kinehook:", err)
		os.Exit(1)
	}
}
