package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/client"
)

func init() { rootCmd.AddCommand(newPortalCmd()) }

// newPortalCmd builds `kinehook portal create|list|revoke`.
func newPortalCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:   "portal",
		Short: "Make, list and revoke customer portal sessions",
		Long: "The customer portal is the part of the dashboard a platform shows its own\n" +
			"customers (in a page of its own, or framed by one of the project's\n" +
			"--portal-origins): their webhook endpoints, health and charts, the delivery\n" +
			"log, retries, secrets and test events; no keys, no project settings.\n\n" +
			"A session is a short-lived URL with a random token (never a project key):\n" +
			"  manage  may also create, change and delete endpoints, rotate secrets,\n" +
			"          retry deliveries and send test events\n" +
			"  read    may only look\n" +
			"Sessions are made with the admin key or a full key of the project. The URL\n" +
			"is printed once; a revoked session is refused on every instance within a\n" +
			"second.",
		Example: `  kinehook portal create --scope manage --expires-in 30m --event-types 'media.*' --name "Acme Video" --color '#0a7f5a'
  kinehook portal list
  kinehook portal revoke pts_...`,
	})
	o.register(cmd)
	cmd.AddCommand(newPortalCreateCmd(o), newPortalListCmd(o), newPortalRevokeCmd(o))
	return cmd
}

// portalCreateFlags are the flags of `portal create`.
type portalCreateFlags struct {
	scope                 string
	expiresIn             time.Duration
	eventTypes            []string
	name, logoURL, colour string
}

// input is the session the flags ask for.
func (f *portalCreateFlags) input(cmd *cobra.Command) (client.PortalSessionInput, error) {
	in := client.PortalSessionInput{Scope: f.scope, EventTypes: f.eventTypes}
	switch f.scope {
	case client.PortalManage, client.PortalRead:
	default:
		return in, fmt.Errorf("--scope %q: want manage or read", f.scope)
	}
	if cmd.Flags().Changed("expires-in") {
		if f.expiresIn < time.Second || f.expiresIn%time.Second != 0 {
			return in, fmt.Errorf("--expires-in %s: want whole seconds, 1s to 168h (7 days)", f.expiresIn)
		}
		secs := int64(f.expiresIn / time.Second)
		in.ExpiresIn = &secs
	}
	if f.name != "" || f.logoURL != "" || f.colour != "" {
		in.Branding = &client.PortalBranding{Name: f.name, LogoURL: f.logoURL, Color: f.colour}
	}
	return in, nil
}

// newPortalCreateCmd builds `portal create`.
func newPortalCreateCmd(o *apiOptions) *cobra.Command {
	f := &portalCreateFlags{}
	create := &cobra.Command{
		Use:   "create --scope manage|read [--expires-in 1h] [--event-types T,...] [--name N] [--logo-url U] [--color #rrggbb]",
		Short: "Make a portal session and print its URL (shown only once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := f.input(cmd)
			if err != nil {
				return err
			}
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			ps, err := c.CreatePortalSession(ctx, pid, in)
			if err != nil {
				return fmt.Errorf("create portal session: %w", err)
			}
			if o.json {
				return ans.print(cmd.OutOrStdout())
			}
			fmt.Fprintln(cmd.OutOrStdout(), ps.URL)
			fmt.Fprintf(cmd.ErrOrStderr(), "Portal session %s (%s), until %s. The URL is not shown again.\n", ps.ID, ps.Scope, apiTime(ps.ExpiresAt))
			return nil
		},
	}
	fl := create.Flags()
	fl.StringVar(&f.scope, "scope", "", "what the customer may do: manage or read (required)")
	fl.DurationVar(&f.expiresIn, "expires-in", time.Hour, "how long the session lasts (at most 168h)")
	fl.StringSliceVar(&f.eventTypes, "event-types", nil, "the only event types the portal shows and offers (media.*, live.finished, ...; default all)")
	fl.StringVar(&f.name, "name", "", "branding: the name in the portal's header")
	fl.StringVar(&f.logoURL, "logo-url", "", "branding: an https:// logo URL shown in the header")
	fl.StringVar(&f.colour, "color", "", "branding: the header's accent colour, #rrggbb")
	_ = create.MarkFlagRequired("scope")
	return create
}

// newPortalListCmd builds `portal list`.
func newPortalListCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the project's portal sessions, newest first (never their URLs)",
		Args:  cobra.NoArgs,
		RunE: apiCall(o, func(ctx context.Context, c *client.Client, pid string, _ []string) ([]*client.PortalSession, error) {
			ps, err := c.ListPortalSessions(ctx, pid)
			if err != nil {
				return nil, fmt.Errorf("list portal sessions: %w", err)
			}
			return ps, nil
		}, func(w io.Writer, ps []*client.PortalSession) error {
			rows := make([][]string, 0, len(ps))
			now := time.Now()
			for _, s := range ps {
				state := "active"
				switch {
				case s.RevokedAt != nil:
					state = "revoked"
				case !now.Before(s.ExpiresAt):
					state = "expired"
				}
				types := "all"
				if len(s.EventTypes) > 0 {
					types = strings.Join(s.EventTypes, ",")
				}
				rows = append(rows, []string{s.ID, s.Scope, state, types, apiTime(s.CreatedAt), apiTime(s.ExpiresAt)})
			}
			return apiTable(w, []string{"ID", "SCOPE", "STATE", "EVENT_TYPES", "CREATED", "EXPIRES"}, rows)
		}),
	}
}

// newPortalRevokeCmd builds `portal revoke`.
func newPortalRevokeCmd(o *apiOptions) *cobra.Command {
	return newRemoveCmd(o, "revoke SESSION_ID", "End a portal session at once (on every instance within a second)", "revoked", "portal session",
		(*client.Client).RevokePortalSession, func(id string) any { return map[string]any{"id": id, "revoked": true} })
}
