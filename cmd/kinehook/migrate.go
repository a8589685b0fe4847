package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/postgres"
)

// migrateDatabaseEnv is read when --database is not given.
const migrateDatabaseEnv = "KINEHOOK_DATABASE"

func init() { rootCmd.AddCommand(newMigrateCmd()) }

func newMigrateCmd() *cobra.Command {
	var (
		database string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the PostgreSQL schema migrations and exit",
		Long: `Apply the embedded PostgreSQL schema migrations to --database (or
KINEHOOK_DATABASE) and exit. kinehook serve applies them itself at start, under
an advisory lock, so running this first is optional: it is for deployments that
migrate in a separate step (an init container, a release job). Running it
several times, or while instances start, is safe.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("database") {
				if v, ok := os.LookupEnv(migrateDatabaseEnv); ok {
					database = v
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return runMigrate(ctx, database, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&database, "database", "", "PostgreSQL URL, postgres://user:pass@host:5432/db (env "+migrateDatabaseEnv+")")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long (waiting for the migration lock included)")
	return cmd
}

func runMigrate(ctx context.Context, database string, out io.Writer) error {
	if database == "" {
		return errors.New("migrate: no database: pass --database postgres://... or set " + migrateDatabaseEnv)
	}
	if !strings.HasPrefix(database, "postgres://") && !strings.HasPrefix(database, "postgresql://") {
		return fmt.Errorf("migrate: --database %q is not a postgres:// URL (the embedded store migrates itself)", redactURL(database))
	}
	applied, err := postgres.Migrate(ctx, database)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", redactURL(database), err)
	}
	if len(applied) == 0 {
		fmt.Fprintf(out, "schema is up to date (version %d)\n", postgres.SchemaVersion())
		return nil
	}
	fmt.Fprintf(out, "applied migrations %v; schema is at version %d\n", applied, postgres.SchemaVersion())
	return nil
}
