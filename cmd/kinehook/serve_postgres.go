package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/postgres"
)

// openServePostgres opens the PostgreSQL store of --database.
func openServePostgres(ctx context.Context, o *serveOptions, log *slog.Logger) (kinehook.Store, kinehook.Coordinator, error) {
	st, err := postgres.Open(ctx, o.database, postgres.Options{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("open PostgreSQL %s: %w", redactURL(o.database), err)
	}
	return st, nil, nil
}
