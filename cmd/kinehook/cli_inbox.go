package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func init() { rootCmd.AddCommand(newSourcesCmd(), newMediaCmd(), newLiveCmd()) }

// newSourcesCmd builds `kinehook sources ...`: the inbox sources Kinescope
// (or another sender) calls.
func newSourcesCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:     "sources",
		Aliases: []string{"source"},
		Short:   "Manage a project's inbox sources (the URLs Kinescope calls, relayed to the endpoints)",
	})
	o.register(cmd)
	cmd.AddCommand(newSourceCreateCmd(o), newSourceListCmd(o), newSourceDeleteCmd(o))
	return cmd
}

// sourcePairs prints a source as label/value lines; url is the full inbox URL.
func sourcePairs(s *client.Source, base string) [][2]string {
	return [][2]string{{"id", s.ID}, {"name", s.Name}, {"type", s.Type}, {"url", strings.TrimSuffix(base, "/") + s.Path},
		{"created_at", apiTime(s.CreatedAt)}}
}

func newSourceCreateCmd(o *apiOptions) *cobra.Command {
	var typ, login, password, secret string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an inbox source and print the URL to give Kinescope",
		Long: "Create an inbox source and print the URL to give Kinescope.\n\n" +
			"A kinescope source checks Basic Auth: set the same login and password in Kinescope's\n" +
			"webhook (its /v1/webhooks API: endpoint = the printed URL, login, password).\n" +
			"A standard-webhooks source checks a Standard Webhooks signature made with --secret.\n" +
			"The password may come from KINEHOOK_SOURCE_PASSWORD instead of the command line.",
		Example: `  kinehook sources create kinescope --login kinescope --password "$PW"
  kinehook sources create peer --type standard-webhooks --secret whsec_...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := client.SourceInput{Name: &args[0], Type: &typ}
			if password == "" {
				password = os.Getenv("KINEHOOK_SOURCE_PASSWORD")
			}
			switch typ {
			case kinehook.InboxKinescope:
				if login == "" || password == "" {
					return fmt.Errorf("a kinescope source needs --login and --password (or KINEHOOK_SOURCE_PASSWORD): Kinescope sends them with Basic Auth")
				}
				in.Login, in.Password = &login, &password
			case kinehook.InboxStandardWebhooks:
				if secret == "" {
					return fmt.Errorf("a standard-webhooks source needs --secret whsec_... (the sender's signing secret)")
				}
				in.Secret = &secret
			default:
				return fmt.Errorf("--type %q: want kinescope or standard-webhooks", typ)
			}
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			s, err := c.CreateSource(ctx, pid, in)
			if err != nil {
				return fmt.Errorf("create source: %w", err)
			}
			return o.show(cmd, ans, func(w io.Writer) error { return apiFields(w, sourcePairs(s, c.BaseURL())) })
		},
	}
	f := create.Flags()
	f.StringVar(&typ, "type", kinehook.InboxKinescope, "kinescope (Basic Auth) or standard-webhooks (signature)")
	f.StringVar(&login, "login", "", "Basic Auth login (kinescope)")
	f.StringVar(&password, "password", "", "Basic Auth password (kinescope; env KINEHOOK_SOURCE_PASSWORD)")
	f.StringVar(&secret, "secret", "", "the sender's whsec_ signing secret (standard-webhooks)")
	return create
}

func newSourceListCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the project's inbox sources",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			ss, err := c.ListSources(ctx, pid)
			if err != nil {
				return fmt.Errorf("list sources: %w", err)
			}
			if o.json {
				return ans.print(cmd.OutOrStdout())
			}
			rows := make([][]string, 0, len(ss))
			for _, s := range ss {
				rows = append(rows, []string{s.ID, s.Name, s.Type, strings.TrimSuffix(c.BaseURL(), "/") + s.Path, apiTime(s.CreatedAt)})
			}
			return apiTable(cmd.OutOrStdout(), []string{"ID", "NAME", "TYPE", "URL", "CREATED"}, rows)
		},
	}
}

func newSourceDeleteCmd(o *apiOptions) *cobra.Command {
	return newRemoveCmd(o, "delete SOURCE_ID", "Delete an inbox source (its events stay)", "deleted", "source",
		(*client.Client).DeleteSource, func(id string) any { return map[string]any{"deleted": id} })
}

// stateListFlags are the flags of `media list` and `live list`.
type stateListFlags struct {
	status, since, cursor string
	limit                 int
}

func (f *stateListFlags) register(cmd *cobra.Command, statusFlag, what string) {
	fl := cmd.Flags()
	fl.StringVar(&f.status, statusFlag, "", "only "+what)
	fl.StringVar(&f.since, "since", "", "only those updated since (RFC 3339, a date, or a duration like 2h)")
	fl.StringVar(&f.cursor, "cursor", "", "the next page's cursor, from a previous list")
	fl.IntVar(&f.limit, "limit", 0, "page size, 1 to 1000 (0: the server's default)")
}

func (f *stateListFlags) options() (client.StateListOptions, error) {
	opts := client.StateListOptions{Status: f.status, Cursor: f.cursor, Limit: f.limit}
	if f.limit < 0 || f.limit > 1000 {
		return opts, fmt.Errorf("--limit %d: want 1 to 1000 (0: the server's default)", f.limit)
	}
	if f.since != "" {
		t, err := parseSince(f.since, time.Now())
		if err != nil {
			return opts, fmt.Errorf("--since: %w", err)
		}
		opts.Since = t
	}
	return opts, nil
}

// newMediaCmd builds `kinehook media get|list`: each video's state.
func newMediaCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:   "media",
		Short: "Show the state of the project's videos (from the events it accepted)",
	})
	o.register(cmd)
	get := &cobra.Command{
		Use:   "get VIDEO_ID",
		Short: "Show a video's status and history",
		Args:  cobra.ExactArgs(1),
		RunE: apiCall(o, func(ctx context.Context, c *client.Client, pid string, args []string) (*kinehook.MediaState, error) {
			m, err := c.GetMedia(ctx, pid, args[0])
			if err != nil {
				return nil, fmt.Errorf("get media %s: %w", args[0], err)
			}
			return m, nil
		}, func(w io.Writer, m *kinehook.MediaState) error {
			if err := apiFields(w, [][2]string{{"id", m.ID}, {"status", m.Status}, {"message", apiOr(m.Message)}, {"updated_at", apiTime(m.UpdatedAt)}}); err != nil {
				return err
			}
			rows := make([][]string, 0, len(m.History))
			for _, h := range m.History {
				rows = append(rows, []string{apiTime(h.At), h.Status, apiOr(h.Message), h.EventID})
			}
			fmt.Fprintln(w)
			return apiTable(w, []string{"AT", "STATUS", "MESSAGE", "EVENT"}, rows)
		}),
	}
	lf := &stateListFlags{}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List videos, most recently updated first",
		Example: `  kinehook media list --status error --since 24h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := lf.options()
			if err != nil {
				return err
			}
			return apiCall(o, func(ctx context.Context, c *client.Client, pid string, _ []string) (*client.MediaPage, error) {
				p, err := c.ListMedia(ctx, pid, opts)
				if err != nil {
					return nil, fmt.Errorf("list media: %w", err)
				}
				return p, nil
			}, func(w io.Writer, p *client.MediaPage) error {
				rows := make([][]string, 0, len(p.Data))
				for _, m := range p.Data {
					rows = append(rows, []string{m.ID, m.Status, apiOr(m.Message), apiTime(m.UpdatedAt)})
				}
				if err := apiTable(w, []string{"ID", "STATUS", "MESSAGE", "UPDATED"}, rows); err != nil {
					return err
				}
				if p.NextCursor != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s\n", p.NextCursor)
				}
				return nil
			})(cmd, args)
		},
	}
	lf.register(list, "status", "videos in this status (e.g. error)")
	cmd.AddCommand(get, list)
	return cmd
}

// newLiveCmd builds `kinehook live list`: each stream's state.
func newLiveCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:   "live",
		Short: "Show the state of the project's live streams (from the events it accepted)",
	})
	o.register(cmd)
	lf := &stateListFlags{}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List live streams, most recently updated first, with how long each has been in its state",
		Example: `  kinehook live list --state disconnected`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := lf.options()
			if err != nil {
				return err
			}
			return apiCall(o, func(ctx context.Context, c *client.Client, pid string, _ []string) (*client.LivePage, error) {
				p, err := c.ListLive(ctx, pid, opts)
				if err != nil {
					return nil, fmt.Errorf("list live: %w", err)
				}
				return p, nil
			}, func(w io.Writer, p *client.LivePage) error {
				rows := make([][]string, 0, len(p.Data))
				for _, l := range p.Data {
					rows = append(rows, []string{l.EventID, l.State, apiTime(l.UpdatedAt), since(l.UpdatedAt), apiOr(l.VideoID)})
				}
				if err := apiTable(w, []string{"EVENT_ID", "STATE", "SINCE", "FOR", "VIDEO_ID"}, rows); err != nil {
					return err
				}
				if p.NextCursor != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s\n", p.NextCursor)
				}
				return nil
			})(cmd, args)
		},
	}
	lf.register(list, "state", "streams in this state (created, connected, disconnected, finished, cancelled, enabled)")
	cmd.AddCommand(list)
	return cmd
}

// since says how long ago t was, to the second.
func since(t time.Time) string {
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	if d >= 48*time.Hour {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}
