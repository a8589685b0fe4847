package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// BackupFile copies the SQLite database src to dest through a connection of
// its own with VACUUM INTO: one read snapshot, so writers (in this process or
// another, WAL) go on and the copy is consistent. The copy is made in a
// temporary file beside dest with owner-only access (it holds payloads, key
// hashes and sealed secrets), checked with PRAGMA quick_check, fsynced, then
// linked to dest, or with overwrite renamed over it: dest is never a partial
// file, and an existing dest is never replaced without overwrite (the error
// then wraps fs.ErrExist; a missing src wraps fs.ErrNotExist). It returns
// the backup's size. It does not open the database as a Store, which would
// apply this binary's migrations to a live file that another version may be
// serving.
func BackupFile(ctx context.Context, src, dest string, overwrite bool) (int64, error) {
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
		return 0, fmt.Errorf("backup: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("backup: %s is not a database file", srcAbs)
	}
	switch destAbs {
	case srcAbs, srcAbs + "-wal", srcAbs + "-shm":
		return 0, fmt.Errorf("backup: %s is the live database; write the backup elsewhere", dest)
	}
	if !overwrite {
		if _, err := os.Lstat(destAbs); err == nil {
			return 0, fmt.Errorf("backup: %s: %w", dest, fs.ErrExist)
		}
	}

	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := destAbs + ".partial-" + hex.EncodeToString(rnd[:])
	// Made empty with owner-only access first (VACUUM INTO fills an empty
	// file), the copy is never readable by others, even half written.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	f.Close()
	defer os.Remove(tmp) // gone after the link or rename; removes a failed copy

	db, err := sql.Open("sqlite", fileDSN(srcAbs))
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
	if err := quickCheck(ctx, tmp); err != nil {
		return 0, err
	}
	if err := syncFile(tmp); err != nil {
		return 0, err
	}
	if overwrite {
		err = os.Rename(tmp, destAbs)
	} else {
		// A hard link fails when dest appeared meanwhile: never clobber it.
		err = os.Link(tmp, destAbs)
	}
	if err != nil {
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

// fileDSN is a database/sql name for an existing database file that waits
// for locks instead of failing and never creates the file.
func fileDSN(path string) string {
	q := url.Values{}
	q.Set("mode", "rw")
	q.Add("_pragma", "busy_timeout(10000)")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// quickCheck runs PRAGMA quick_check on a finished copy.
func quickCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", fileDSN(path))
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
