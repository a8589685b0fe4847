package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/client"
)

func init() { rootCmd.AddCommand(newKeysCmd()) }

// newKeysCmd builds `kinehook keys create|list|revoke`.
func newKeysCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:     "keys",
		Aliases: []string{"key"},
		Short:   "Make, list and revoke a project's API keys",
		Long: "A project has any number of API keys, each with a name and a scope:\n" +
			"  full    everything in the project, managing keys included\n" +
			"  read    GET requests only\n" +
			"  ingest  posting events only (POST .../events and .../events/batch)\n\n" +
			"Keys are managed with the admin key or a full key of the project. A new key\n" +
			"is printed once; only its hash is stored. A revoked key is refused at once\n" +
			"on every instance. The project's last full key cannot be revoked: make\n" +
			"another full key first.",
		Example: `  kinehook keys create encoder --scope ingest
  kinehook keys list
  kinehook keys revoke key_...`,
	})
	o.register(cmd)
	cmd.AddCommand(newKeyCreateCmd(o), newKeyListCmd(o), newKeyRevokeCmd(o))
	return cmd
}

// newKeyCreateCmd builds `keys create`.
func newKeyCreateCmd(o *apiOptions) *cobra.Command {
	var scope string
	create := &cobra.Command{
		Use:   "create NAME --scope full|read|ingest",
		Short: "Make an API key and print it (shown only once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch scope {
			case client.ScopeFull, client.ScopeRead, client.ScopeIngest:
			default:
				return fmt.Errorf("--scope %q: want full, read or ingest", scope)
			}
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			k, err := c.CreateKey(ctx, pid, args[0], scope)
			if err != nil {
				return fmt.Errorf("create key: %w", err)
			}
			if o.json {
				return ans.print(cmd.OutOrStdout())
			}
			if err := apiFields(cmd.OutOrStdout(), [][2]string{
				{"id", k.ID}, {"name", k.Name}, {"scope", k.Scope}, {"key", k.Key}, {"created_at", apiTime(k.CreatedAt)},
			}); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Keep the key: it is not shown again.")
			return nil
		},
	}
	create.Flags().StringVar(&scope, "scope", "", "what the key may do: full, read or ingest (required)")
	_ = create.MarkFlagRequired("scope")
	return create
}

// newKeyListCmd builds `keys list`.
func newKeyListCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the project's keys (never the keys themselves)",
		Args:  cobra.NoArgs,
		RunE: apiCall(o, func(ctx context.Context, c *client.Client, pid string, _ []string) ([]*client.APIKey, error) {
			ks, err := c.ListKeys(ctx, pid)
			if err != nil {
				return nil, fmt.Errorf("list keys: %w", err)
			}
			return ks, nil
		}, func(w io.Writer, ks []*client.APIKey) error {
			rows := make([][]string, 0, len(ks))
			for _, k := range ks {
				used := "never"
				if k.LastUsedAt != nil {
					used = apiTime(*k.LastUsedAt)
				}
				rows = append(rows, []string{k.ID, k.Name, k.Scope, apiOr(k.Prefix), apiTime(k.CreatedAt), used})
			}
			return apiTable(w, []string{"ID", "NAME", "SCOPE", "PREFIX", "CREATED", "LAST_USED"}, rows)
		}),
	}
}

// newKeyRevokeCmd builds `keys revoke`.
func newKeyRevokeCmd(o *apiOptions) *cobra.Command {
	return newRemoveCmd(o, "revoke KEY_ID", "Revoke an API key at once (on every instance)", "revoked", "key",
		(*client.Client).RevokeKey, func(id string) any { return map[string]any{"id": id, "revoked": true} })
}

// stdinIsTerminal reports whether r is an interactive terminal (a variable
// so that tests can answer a prompt).
var stdinIsTerminal = func(r io.Reader) bool {
	w, ok := r.(io.Writer)
	return ok && isTerminal(w)
}

// confirm asks on a terminal for want to be typed; without a terminal it
// refuses, since nobody can answer (--yes is the way to go on).
func confirm(cmd *cobra.Command, question, want string) error {
	in := cmd.InOrStdin()
	if !stdinIsTerminal(in) {
		return fmt.Errorf("%s: not confirmed (no terminal to ask on); pass --yes", question)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s\nType %s to confirm: ", question, want)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		// /dev/null is a character device too: no answer is no.
		return fmt.Errorf("%s: not confirmed (no answer: %v); pass --yes", question, err)
	}
	if strings.TrimSpace(line) != want {
		return fmt.Errorf("%s: not confirmed (%q was typed, not %s)", question, strings.TrimSpace(line), want)
	}
	return nil
}
