package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { rootCmd.AddCommand(newProjectsCmd()) }

// newProjectsCmd builds `kinehook projects create|list` (admin key).
func newProjectsCmd() *cobra.Command {
	o := &apiOptions{}
	cmd := &cobra.Command{
		Use:   "projects",
		Short: "Create and list projects (admin key)",
		Long: "Projects are tenants: each has its own endpoints, events and API key.\n" +
			"These commands need the admin key (--key or KINEHOOK_API_KEY).",
	}
	o.register(cmd)

	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a project and print its API key (shown only once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := o.setup(cmd)
			if err != nil {
				return err
			}
			p, err := c.CreateProject(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("create project: %w", err)
			}
			if o.json {
				return apiPrintJSON(cmd.OutOrStdout(), p)
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

	list := &cobra.Command{
		Use:   "list",
		Short: "List projects",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ps, err := c.ListProjects(cmd.Context())
			if err != nil {
				return fmt.Errorf("list projects: %w", err)
			}
			if o.json {
				return apiPrintJSON(cmd.OutOrStdout(), map[string]any{"data": ps})
			}
			rows := make([][]string, 0, len(ps))
			for _, p := range ps {
				rows = append(rows, []string{p.ID, p.Name, apiTime(p.CreatedAt)})
			}
			return apiTable(cmd.OutOrStdout(), []string{"ID", "NAME", "CREATED"}, rows)
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}
