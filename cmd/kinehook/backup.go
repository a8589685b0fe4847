package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/internal/secretbox"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
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

// backupSQLite copies the SQLite database src to dest through its own
// connection with VACUUM INTO: one read snapshot, so writers in other
// processes go on (WAL) and the copy is consistent. The copy is written to a
// temporary file beside dest, checked, fsynced, then linked (or, with force,
// renamed) to dest, so dest is never a partial file and an existing dest is
// never replaced without force. It returns the size of the backup.
//
// It does not use sqlite.Open, which would apply this binary's migrations
// to the live database of a server that may run another version.
func backupSQLite(ctx context.Context, src, dest string, force bool) (int64, error) {
	srcAbs, err := filepath.Abs(src)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	destAbs, err := filepath.Abs(dest)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	fi, err := os.Stat(srcAbs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("backup: no embedded store at %s (is --data right?)", srcAbs)
		}
		return 0, fmt.Errorf("backup: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("backup: %s is not a database file", srcAbs)
	}
	switch destAbs {
	case srcAbs, srcAbs + "-wal", srcAbs + "-shm":
		return 0, fmt.Errorf("backup: %s is the live database; write the backup elsewhere", dest)
	}
	if !force {
		if _, err := os.Lstat(destAbs); err == nil {
			return 0, fmt.Errorf("backup: %s exists; pass --force to overwrite it", dest)
		}
	}

	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := destAbs + ".partial-" + hex.EncodeToString(rnd[:])
	// The copy holds payloads, key hashes and sealed secrets: made empty
	// with owner-only access first (VACUUM INTO fills an empty file), it is
	// never readable by others, even half written.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	f.Close()
	defer os.Remove(tmp) // gone after the link or rename; removes a failed copy

	db, err := sql.Open("sqlite", sqliteDSN(srcAbs))
	if err != nil {
		return 0, fmt.Errorf("backup: open %s: %w", srcAbs, err)
	}
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, tmp)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("backup: copy %s: %w", srcAbs, err)
	}
	if err := checkSQLiteFile(ctx, tmp); err != nil {
		return 0, err
	}
	if err := syncFile(tmp); err != nil {
		return 0, err
	}
	if force {
		err = os.Rename(tmp, destAbs)
	} else {
		// A hard link fails when dest appeared meanwhile: never clobber it.
		err = os.Link(tmp, destAbs)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return 0, fmt.Errorf("backup: %s exists; pass --force to overwrite it", dest)
		}
		return 0, fmt.Errorf("backup: %w", err)
	}
	if d, err := os.Open(filepath.Dir(destAbs)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	out, err := os.Stat(destAbs)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return out.Size(), nil
}

// sqliteDSN is a database/sql name for path that waits for locks instead of
// failing and refuses to create a missing file.
func sqliteDSN(path string) string {
	q := url.Values{}
	q.Set("mode", "rw")
	q.Add("_pragma", "busy_timeout(10000)")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// checkSQLiteFile runs PRAGMA quick_check on a finished copy.
func checkSQLiteFile(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return fmt.Errorf("backup: check the copy: %w", err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return fmt.Errorf("backup: check the copy: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("backup: the copy fails PRAGMA quick_check: %s", res)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: sync %s: %w", path, err)
	}
	return nil
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
