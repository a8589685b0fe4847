package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/kinehook/kinehook"
)

// classify tells a database-wide failure (the server unreachable, shutting
// down or restarting, out of disk) from the failure of one statement. SQLSTATE
// codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
func classify(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "53100": // disk_full
			return kinehook.ESTORAGEFULL
		case strings.HasPrefix(pe.Code, "08"), // connection_exception
			pe.Code == "57P01", // admin_shutdown
			pe.Code == "57P02", // crash_shutdown
			pe.Code == "57P03", // cannot_connect_now (starting up, shutting down)
			pe.Code == "53000", // insufficient_resources
			pe.Code == "53200", // out_of_memory
			pe.Code == "53300", // too_many_connections
			pe.Code == "58030", // io_error
			pe.Code == "25006": // read_only_sql_transaction (a standby, or default_transaction_read_only)
			return kinehook.ESTOREUNAVAILABLE
		}
		return ""
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return kinehook.ESTOREUNAVAILABLE
	}
	return ""
}

// probe makes one small write, through the pool as every operation does.
func (s *Store) probe(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO settings (key, value) VALUES ('store_probe', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	if err != nil {
		return fmt.Errorf("postgres: probe write: %w", err)
	}
	return nil
}

// StoreHealth returns the tracker that tells an outage of the database (a
// restart, a full disk) from single failures; see internal/storehealth.
func (s *Store) Health() kinehook.StoreHealth { return s.health }
