package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
)

func init() { rootCmd.AddCommand(newConfigCmd()) }

// cliConfig is the CLI's settings file: the server, key and project the API
// commands use when neither a flag nor the environment gives them, so that a
// user does not export three variables in every terminal.
type cliConfig struct {
	URL     string `json:"url,omitempty"`
	Key     string `json:"key,omitempty"`
	Project string `json:"project,omitempty"`
}

// configKeys are the settings `kinehook config set` knows, in display order.
var configKeys = []string{"url", "key", "project"}

// configPath is the settings file: KINEHOOK_CONFIG, else kinehook/config.json
// in the user's configuration directory ($XDG_CONFIG_HOME or ~/.config on
// Linux).
func configPath() (string, error) {
	if p := os.Getenv("KINEHOOK_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the configuration directory (set KINEHOOK_CONFIG): %w", err)
	}
	return filepath.Join(dir, "kinehook", "config.json"), nil
}

// loadConfig reads the settings file; a missing file is an empty config.
func loadConfig() (cliConfig, string, error) {
	var c cliConfig
	path, err := configPath()
	if err != nil {
		return c, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return c, path, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, path, fmt.Errorf("%s is not a kinehook config (JSON with url, key, project): %w", path, err)
	}
	return c, path, nil
}

// saveConfig writes the settings file readable by its owner only: it holds an
// API key.
func saveConfig(path string, c cliConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// field returns a pointer to the setting named k.
func (c *cliConfig) field(k string) (*string, error) {
	switch k {
	case "url":
		return &c.URL, nil
	case "key":
		return &c.Key, nil
	case "project":
		return &c.Project, nil
	}
	return nil, fmt.Errorf("unknown setting %q: want one of %s", k, strings.Join(configKeys, ", "))
}

// newConfigCmd builds `config`.
func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Keep the server URL, API key and project for the API commands",
		Long: `The API commands (projects, endpoints, events, deliveries) take the server,
the key and the project from their flags (--url or --server, --key, --project),
then from the environment (KINEHOOK_URL, KINEHOOK_API_KEY, KINEHOOK_PROJECT),
then from this settings file, then the defaults. The file is
KINEHOOK_CONFIG, or kinehook/config.json in the user's configuration directory
(~/.config on Linux); it is written readable by its owner only.`,
		Example: `  kinehook config set url http://127.0.0.1:8080
  kinehook config set key kh_...
  kinehook config show`,
	}
	apiGroup(cmd)
	cmd.AddCommand(newConfigSetCmd(), newConfigUnsetCmd(), newConfigShowCmd())
	return cmd
}

func newConfigSetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "set url|key|project VALUE",
		Short: "Save one setting",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, path, err := loadConfig()
			if err != nil {
				return err
			}
			f, err := c.field(args[0])
			if err != nil {
				return err
			}
			v := strings.TrimSpace(args[1])
			if args[0] == "url" {
				if err := checkServerURL(v); err != nil {
					return err
				}
			}
			*f = v
			if err := saveConfig(path, c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s saved in %s\n", args[0], path)
			return nil
		},
	}
}

func newConfigUnsetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unset url|key|project",
		Short: "Remove one setting",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, path, err := loadConfig()
			if err != nil {
				return err
			}
			f, err := c.field(args[0])
			if err != nil {
				return err
			}
			*f = ""
			if err := saveConfig(path, c); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s removed from %s\n", args[0], path)
			return nil
		},
	}
}

func newConfigShowCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the settings file (the key masked) and where it is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, path, err := loadConfig()
			if err != nil {
				return err
			}
			c.Key = maskKey(c.Key)
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
					Path string `json:"path"`
					cliConfig
				}{path, c})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "file     %s\n", path)
			for _, k := range configKeys {
				f, _ := c.field(k)
				fmt.Fprintf(w, "%-8s %s\n", k, apiOr(*f))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// maskKey shows the start of a key, enough to tell keys apart.
func maskKey(k string) string {
	if len(k) <= 8 {
		return strings.Repeat("*", len(k))
	}
	return k[:min(len(k)-8, 8)] + "****"
}

// checkServerURL refuses what cannot be a server's base URL.
func checkServerURL(u string) error {
	if !slices.ContainsFunc([]string{"http://", "https://"}, func(p string) bool { return strings.HasPrefix(u, p) }) {
		return fmt.Errorf("--url %q: want an http:// or https:// URL", u)
	}
	return nil
}
