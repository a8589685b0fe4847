package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/kinehook/kinehook"

	sqlitedrv "modernc.org/sqlite"
)

// SQLite's primary result codes that say the file as a whole cannot be
// written (https://sqlite.org/rescode.html); extended codes keep them in
// their low byte.
const (
	sqliteReadOnly = 8
	sqliteIOErr    = 10
	sqliteFull     = 13
	sqliteCantOpen = 14
)

// probeSize is how much the health probe writes: a few pages, so that a
// probe that only fits in WAL space already allocated does not call a
// still-full disk healthy.
const probeSize = 32 << 10

// classify tells a store-wide failure (full disk, I/O error, read-only file)
// from the failure of one statement.
func classify(err error) string {
	var se *sqlitedrv.Error
	if !errors.As(err, &se) {
		return ""
	}
	switch se.Code() & 0xff {
	case sqliteFull:
		return kinehook.ESTORAGEFULL
	case sqliteIOErr, sqliteReadOnly, sqliteCantOpen:
		return kinehook.ESTOREUNAVAILABLE
	}
	return ""
}

// probe writes probeSize bytes and removes them again, in two commits: it
// succeeds only when the file can grow.
func (s *Store) probe(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES ('store_probe', zeroblob(?))
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, probeSize); err != nil {
		return fmt.Errorf("sqlite: probe write: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM settings WHERE key = 'store_probe'`); err != nil {
		return fmt.Errorf("sqlite: probe delete: %w", err)
	}
	return nil
}

// StoreHealth returns the tracker that tells an outage of this store (a
// full disk, say) from single failures; see internal/storehealth.
func (s *Store) Health() kinehook.StoreHealth { return s.health }
