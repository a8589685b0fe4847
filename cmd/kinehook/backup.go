package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/internal/secretbox"
	"github.com/kinehook/kinehook/sqlite"
)

func init() { rootCmd.AddCommand(newBackupCmd()) }

func newBackupCmd() *cobra.Command {
	var (
		data  string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the embedded store to FILE, while the server runs",
		Long: `Write a consistent copy of the embedded store (DATA/kinehook.db) to FILE.

The copy is taken online: a separate SQLite connection reads one snapshot
(VACUUM INTO) while kinehook serve keeps accepting and delivering, so it holds
exactly the commits made before the snapshot began, and nothing half-written.
It is checked (PRAGMA quick_check), fsynced, and only then moved to FILE.
FILE must not exist unless --force is given.

The backup does not contain the encryption key that seals endpoint secrets
(DATA/encryption.key or KINEHOOK_ENCRYPTION_KEY): keep a copy of the key,
separately. To restore: stop the server, copy FILE to DATA/kinehook.db,
remove DATA/kinehook.db-wal and DATA/kinehook.db-shm, start the server.

--data is also read from KINEHOOK_DATA, as for serve. For PostgreSQL use
pg_dump instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if v, ok := os.LookupEnv(serveEnvName("data")); ok && v != "" && !cmd.Flags().Changed("data") {
				data = v
			}
			src := filepath.Join(data, "kinehook.db")
			size, err := backupSQLite(cmd.Context(), src, args[0], force)
			if err != nil {
				if db := os.Getenv(serveEnvName("database")); db != "" {
					return fmt.Errorf("%w (KINEHOOK_DATABASE is set: this command backs up the embedded store only; back up PostgreSQL with pg_dump)", err)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kinehook: backed up %s to %s: %d bytes (%s)\n", src, args[0], size, humanBytes(size))
			if _, set := os.LookupEnv(secretbox.EnvKey); !set {
				fmt.Fprintf(cmd.ErrOrStderr(), "kinehook: endpoint secrets in the backup are sealed with %s, which is not in it: keep a copy of that key, separately\n",
					filepath.Join(data, secretbox.KeyFileName))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "./kinehook-data", "data directory of the embedded store")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite FILE if it exists")
	return cmd
}

// backupSQLite is sqlite.BackupFile (a checked, fsynced, owner-only copy
// through its own connection; it never migrates the live file) with errors
// worded for this command's flags.
func backupSQLite(ctx context.Context, src, dest string, force bool) (int64, error) {
	size, err := sqlite.BackupFile(ctx, src, dest, force)
	switch {
	case errors.Is(err, fs.ErrExist):
		return 0, fmt.Errorf("backup: %s exists; pass --force to overwrite it", dest)
	case errors.Is(err, fs.ErrNotExist) && !fileExists(src):
		abs, _ := filepath.Abs(src)
		return 0, fmt.Errorf("backup: no embedded store at %s (is --data right?)", abs)
	}
	return size, err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// humanBytes renders n in binary units (KiB, MiB, GiB).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
