package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
)

var _ kinehook.CertCache = (*Store)(nil)

// CacheGet returns a value of the ACME cache (sealed at rest), or ErrNotFound.
func (s *Store) CacheGet(ctx context.Context, key string) ([]byte, error) {
	var sealed []byte
	if err := s.pool.QueryRow(ctx, `SELECT data FROM acme_cache WHERE key = $1`, key).Scan(&sealed); err != nil {
		return nil, wrap("acme cache get", err)
	}
	b, err := s.open(sealed)
	if err != nil {
		return nil, fmt.Errorf("postgres: acme cache %s: %w", key, err)
	}
	return b, nil
}

// CachePut stores a value of the ACME cache, sealed.
func (s *Store) CachePut(ctx context.Context, key string, data []byte) error {
	sealed, err := s.seal(data)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO acme_cache (key, data, updated_at) VALUES ($1, $2, now())
		ON CONFLICT (key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`, key, sealed)
	return wrap("acme cache put", err)
}

// CacheDelete removes a value of the ACME cache (none is no error).
func (s *Store) CacheDelete(ctx context.Context, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM acme_cache WHERE key = $1`, key)
	return wrap("acme cache delete", err)
}

// resealCertCache re-seals the ACME cache (key rotation).
func resealCertCache(ctx context.Context, tx pgx.Tx, reseal func([]byte) ([]byte, error)) (int, error) {
	rows, err := tx.Query(ctx, `SELECT key, data FROM acme_cache ORDER BY key FOR UPDATE`)
	if err != nil {
		return 0, err
	}
	type row struct {
		key  string
		data []byte
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.key, &r.data); err != nil {
			rows.Close()
			return 0, err
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range all {
		out, err := reseal(r.data)
		if err != nil {
			return 0, fmt.Errorf("acme cache %s: %w", r.key, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE acme_cache SET data = $2 WHERE key = $1`, r.key, out); err != nil {
			return 0, fmt.Errorf("acme cache %s: %w", r.key, err)
		}
	}
	return len(all), nil
}
