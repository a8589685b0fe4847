package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ResealSecrets is encryption key rotation (the kinehook.Resealer
// contract): it passes every sealed value (endpoint secrets, Basic Auth
// logins and passwords, custom headers, destination credentials; exactly as SecretBox.Seal returned
// them) to reseal and writes
// back what changed, in one transaction with the rows locked, so instances
// running meanwhile never see half a rotation. It returns how many values
// changed; if reseal fails nothing is written.
func (s *Store) ResealSecrets(ctx context.Context, reseal func(sealed []byte) ([]byte, error)) (int, error) {
	if s.box == nil {
		return 0, errors.New("postgres: reseal: the store was opened without an encryption key, so nothing is sealed")
	}
	changed := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, secrets, password, login_sealed, headers_sealed, credentials FROM endpoints ORDER BY id FOR UPDATE`)
		if err != nil {
			return err
		}
		type row struct {
			id                             string
			secrets, passwrd, login, heads []byte
			creds                          []byte
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.secrets, &r.passwrd, &r.login, &r.heads, &r.creds); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range all {
			dirty := false
			for _, col := range []*[]byte{&r.secrets, &r.passwrd, &r.login, &r.heads, &r.creds} {
				if len(*col) == 0 {
					continue
				}
				out, err := reseal(*col)
				if err != nil {
					return fmt.Errorf("endpoint %s: %w", r.id, err)
				}
				if !bytes.Equal(out, *col) {
					*col, dirty = out, true
					changed++
				}
			}
			if dirty {
				if _, err := tx.Exec(ctx, `UPDATE endpoints SET secrets = $2, password = $3, login_sealed = $4, headers_sealed = $5,
					credentials = $6 WHERE id = $1`, r.id, r.secrets, r.passwrd, r.login, r.heads, r.creds); err != nil {
					return fmt.Errorf("endpoint %s: %w", r.id, err)
				}
			}
		}
		n, err := resealInbox(ctx, tx, reseal)
		changed += n
		if err != nil {
			return err
		}
		n, err = resealCertCache(ctx, tx, reseal)
		changed += n
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: reseal secrets: %w", err)
	}
	return changed, nil
}

// sealLegacy seals what rows written before schema version 3 hold in the
// plain login and headers columns into login_sealed and headers_sealed, and
// empties the plain columns. Open runs it (SQL migrations have no key); it
// is idempotent, and rows are locked so instances starting together seal
// each row once. It returns how many rows it sealed.
func (s *Store) sealLegacy(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, login, headers FROM endpoints
			WHERE login <> '' OR headers <> '{}'::jsonb ORDER BY id FOR UPDATE`)
		if err != nil {
			return err
		}
		type row struct {
			id, login string
			headers   map[string]string
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.login, &r.headers); err != nil {
				rows.Close()
				return err
			}
			all = append(all, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range all {
			var login, headers []byte
			if r.login != "" {
				if login, err = s.seal([]byte(r.login)); err != nil {
					return fmt.Errorf("endpoint %s: %w", r.id, err)
				}
			}
			if len(r.headers) > 0 {
				plain, err := jsonOrNil(r.headers)
				if err != nil {
					return fmt.Errorf("endpoint %s: %w", r.id, err)
				}
				if headers, err = s.seal(plain); err != nil {
					return fmt.Errorf("endpoint %s: %w", r.id, err)
				}
			}
			// This binary always empties the plain columns, so a value there
			// is newer than the sealed one (an older instance wrote it).
			if _, err := tx.Exec(ctx, `UPDATE endpoints SET login = '', headers = '{}'::jsonb,
				login_sealed = coalesce($2, login_sealed), headers_sealed = coalesce($3, headers_sealed) WHERE id = $1`,
				r.id, login, headers); err != nil {
				return fmt.Errorf("endpoint %s: %w", r.id, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: seal logins and headers of older rows: %w", err)
	}
	return n, nil
}
