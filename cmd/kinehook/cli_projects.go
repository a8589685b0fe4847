package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func init() { rootCmd.AddCommand(newProjectsCmd()) }

// newProjectsCmd builds `kinehook projects create|list|get|update|delete`: the group
// and its shared flags; each subcommand has its own builder below.
func newProjectsCmd() *cobra.Command {
	o := &apiOptions{}
	cmd := apiGroup(&cobra.Command{
		Use:   "projects",
		Short: "Create, list, show, update and delete projects",
		Long: "Projects are tenants: each has its own endpoints, events and API key.\n\n" +
			"create and delete need the admin key. list, get and update take the admin key, which\n" +
			"sees every project, or a project key, which sees only its own project\n" +
			"(list shows just it; get and update of another project answer not_found).\n" +
			"The key is --key or KINEHOOK_API_KEY.",
	})
	o.register(cmd)
	cmd.AddCommand(newProjectCreateCmd(o), newProjectListCmd(o), newProjectGetCmd(o), newProjectUpdateCmd(o), newProjectDeleteCmd(o))
	return cmd
}

// showProject prints a project: the API's JSON with --json, else label/value lines.
func showProject(cmd *cobra.Command, o *apiOptions, ans *apiAnswers, p *kinehook.Project) error {
	return o.show(cmd, ans, func(w io.Writer) error { return apiFields(w, projectPairs(p)) })
}

// newProjectCreateCmd builds `projects create`.
func newProjectCreateCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project and print its API key (shown only once; admin key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			p, err := c.CreateProject(ctx, args[0])
			if err != nil {
				return fmt.Errorf("create project: %w", err)
			}
			if o.json {
				return ans.print(cmd.OutOrStdout())
			}
			if err := apiFields(cmd.OutOrStdout(), [][2]string{
				{"id", p.ID}, {"name", p.Name}, {"api_key", p.APIKey}, {"created_at", apiTime(p.CreatedAt)},
			}); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Keep the API key: it is not shown again.")
			return nil
		},
	}
}

// newProjectListCmd builds `projects list`.
func newProjectListCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List projects (a project key: only its own)",
		Args:  cobra.NoArgs,
		RunE: apiCall(o, func(ctx context.Context, c *client.Client, _ string, _ []string) ([]*kinehook.Project, error) {
			ps, err := c.ListProjects(ctx)
			if err != nil {
				return nil, fmt.Errorf("list projects: %w", err)
			}
			return ps, nil
		}, func(w io.Writer, ps []*kinehook.Project) error {
			rows := make([][]string, 0, len(ps))
			for _, p := range ps {
				rows = append(rows, []string{p.ID, p.Name, apiTime(p.CreatedAt)})
			}
			return apiTable(w, []string{"ID", "NAME", "CREATED"}, rows)
		}),
	}
}

// newProjectGetCmd builds `projects get`.
func newProjectGetCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get [PROJECT_ID]",
		Short: "Show a project (default: KINEHOOK_PROJECT, or the key's only project)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.projectArg(cmd, args)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			p, err := c.GetProject(ctx, pid)
			if err != nil {
				return fmt.Errorf("get project %s: %w", pid, err)
			}
			return showProject(cmd, o, ans, p)
		},
	}
}

// newProjectDeleteCmd builds `projects delete`.
func newProjectDeleteCmd(o *apiOptions) *cobra.Command {
	var yes bool
	del := &cobra.Command{
		Use:   "delete PROJECT_ID [--yes]",
		Short: "Delete a project with everything in it (admin key; asks to confirm)",
		Long: "Delete a project with its endpoints, events, deliveries, attempts and API keys\n" +
			"(DELETE /v1/projects/{pid}, admin key). Its queued deliveries are dropped first,\n" +
			"on every instance. It cannot be undone: on a terminal you are asked to type the\n" +
			"project id; elsewhere (a script) pass --yes.",
		Example: `  kinehook projects delete prj_...
  kinehook projects delete prj_... --yes`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			pid := args[0]
			if !yes {
				p, err := c.GetProject(cmd.Context(), pid)
				if err != nil {
					return fmt.Errorf("delete project %s: %w", pid, err)
				}
				q := fmt.Sprintf("Delete project %s (%q) with all its endpoints, events, deliveries and keys? This cannot be undone.", p.ID, p.Name)
				if err := confirm(cmd, q, p.ID); err != nil {
					return err
				}
			}
			if err := c.DeleteProject(cmd.Context(), pid); err != nil {
				return fmt.Errorf("delete project %s: %w", pid, err)
			}
			if o.json {
				// The API answers 204 No Content: there is no JSON of its own to print.
				return apiPrintJSON(cmd.OutOrStdout(), map[string]any{"id": pid, "deleted": true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted project %s\n", pid)
			return nil
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "delete without asking")
	return del
}

// projectUpdateFlags are the flags of `projects update`.
type projectUpdateFlags struct {
	name, operationsURL string
	retentionDays       int
	portalOrigins       []string
}

// newProjectUpdateCmd builds `projects update`.
func newProjectUpdateCmd(o *apiOptions) *cobra.Command {
	uo := &projectUpdateFlags{}
	update := &cobra.Command{
		Use:   "update [PROJECT_ID] [--name N] [--retention-days D] [--operations-url U] [--portal-origins O,...]",
		Short: "Change a project: only the flags given change",
		Long: "Change a project (PATCH /v1/projects/{pid}): only the flags given are sent.\n\n" +
			"--retention-days 0 goes back to the server's retention (serve --retention-days);\n" +
			"--operations-url '' removes the operations URL; --portal-origins '' lets no\n" +
			"page frame the customer portal. The project is the argument,\n" +
			"else KINEHOOK_PROJECT, else the key's only project.",
		Example: `  kinehook projects update prj_... --name "Acme Video (prod)" --retention-days 30
  kinehook projects update --operations-url https://ops.example.com/kinehook   # with a project key
  kinehook projects update prj_... --operations-url ''                          # remove it
  kinehook projects update --portal-origins https://app.example.com             # who may frame the portal`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := uo.changes(cmd.Flags())
			if err != nil {
				return err
			}
			c, pid, err := o.projectArg(cmd, args)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			p, err := c.UpdateProject(ctx, pid, u)
			if err != nil {
				return fmt.Errorf("update project %s: %w", pid, err)
			}
			return showProject(cmd, o, ans, p)
		},
	}
	uf := update.Flags()
	uf.StringVar(&uo.name, "name", "", "the project's name (1 to 200 characters)")
	uf.IntVar(&uo.retentionDays, "retention-days", 0, "days events are kept (0 = the server's default)")
	uf.StringVar(&uo.operationsURL, "operations-url", "", "URL receiving operational events such as endpoint.disabled ('' removes it)")
	uf.StringSliceVar(&uo.portalOrigins, "portal-origins", nil, "origins (https://app.example.com, comma-separated or repeated) whose pages may frame the customer portal ('' for none)")
	return update
}

// changes is the update the flags given ask for: only the flags set on the
// command line are sent.
func (uo *projectUpdateFlags) changes(fl *pflag.FlagSet) (client.ProjectUpdate, error) {
	var u client.ProjectUpdate
	setIfChanged(fl, "name", &u.Name, &uo.name)
	if fl.Changed("retention-days") && (uo.retentionDays < 0 || uo.retentionDays > kinehook.MaxRetentionDays) {
		return u, fmt.Errorf("--retention-days %d: want 0 (the server's default) to %d", uo.retentionDays, kinehook.MaxRetentionDays)
	}
	setIfChanged(fl, "retention-days", &u.RetentionDays, &uo.retentionDays)
	setIfChanged(fl, "operations-url", &u.OperationsURL, &uo.operationsURL)
	if fl.Changed("portal-origins") {
		origins := slices.DeleteFunc(slices.Clone(uo.portalOrigins), func(o string) bool { return strings.TrimSpace(o) == "" })
		u.PortalOrigins = &origins
	}
	if u == (client.ProjectUpdate{}) {
		return u, errors.New("nothing to change: give at least one of --name, --retention-days, --operations-url, --portal-origins")
	}
	return u, nil
}

// projectArg returns the client and the project of `projects get|update
// [PROJECT_ID]`: the argument, else KINEHOOK_PROJECT, else the key's only
// project (always so for a project key).
func (o *apiOptions) projectArg(cmd *cobra.Command, args []string) (*client.Client, string, error) {
	c, err := o.client()
	if err != nil {
		return nil, "", err
	}
	if len(args) == 1 && args[0] != "" {
		return c, args[0], nil
	}
	pid, err := o.projectID(cmd.Context(), c)
	if err != nil {
		return nil, "", err
	}
	return c, pid, nil
}

// projectPairs prints a project as label/value lines.
func projectPairs(p *kinehook.Project) [][2]string {
	retention := "server default"
	if p.RetentionDays > 0 {
		retention = strconv.Itoa(p.RetentionDays) + " days"
	}
	pairs := [][2]string{
		{"id", p.ID}, {"name", p.Name}, {"retention", retention},
		{"operations_url", apiOr(p.OperationsURL)},
	}
	if p.OperationsURL != "" { // the endpoint it made (its secret signs the operational events)
		pairs = append(pairs, [2]string{"operations_endpoint", kinehook.OperationsEndpointID(p.ID)})
	}
	if len(p.PortalOrigins) > 0 {
		pairs = append(pairs, [2]string{"portal_origins", strings.Join(p.PortalOrigins, " ")})
	}
	return append(pairs, [2]string{"created_at", apiTime(p.CreatedAt)})
}
