package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/cluster"
	"github.com/kinehook/kinehook/internal/secretbox"
	"github.com/kinehook/kinehook/postgres"
)

// openServePostgres opens the PostgreSQL store of --database (migrating it
// under an advisory lock) with secrets sealed by KINEHOOK_ENCRYPTION_KEY
// (required), and the cluster Coordinator that shares the delivery
// partitions with the other instances on the same database, over the
// store's Driver. Closing the store closes the driver's connections.
func openServePostgres(ctx context.Context, o *serveOptions, log *slog.Logger) (kinehook.Store, kinehook.Coordinator, error) {
	// Every instance must seal and open secrets with the same key, so with
	// PostgreSQL it comes from the environment, never from a local file.
	box, err := secretbox.LoadRequired()
	if err != nil {
		return nil, nil, err
	}
	st, err := postgres.Open(ctx, o.database, postgres.Options{Logger: log, SecretBox: box})
	if err != nil {
		return nil, nil, fmt.Errorf("open PostgreSQL %s: %w", redactURL(o.database), err)
	}
	drv, err := postgres.NewDriver(st)
	if err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("PostgreSQL coordinator: %w", err)
	}
	coord, err := cluster.New(drv, cluster.Options{Logger: log})
	if err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("PostgreSQL coordinator: %w", err)
	}
	log.Info("sharing deliveries with the other instances on this database", "instance", coord.ID())
	return st, coord, nil
}
