package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ResealSecrets is encryption key rotation (the internal/secretbox Resealer
// contract): it passes every sealed value (endpoint secrets and Basic Auth
// passwords, exactly as SecretBox.Seal returned them) to reseal and writes
// back what changed, in one transaction with the rows locked, so instances
// running meanwhile never see half a rotation. It returns how many values
// changed; if reseal fails nothing is written.
func (s *Store) ResealSecrets(ctx context.Context, reseal func(sealed []byte) ([]byte, error)) (int, error) {
	if s.box == nil {
		return 0, errors.New("postgres: reseal: the store was opened without an encryption key, so nothing is sealed")
	}
	changed := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, secrets, password FROM endpoints ORDER BY id FOR UPDATE`)
		if err != nil {
			return err
		}
		type row struct {
			id               string
			secrets, passwrd []byte
		}
		var all []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.secrets, &r.passwrd); err != nil {
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
			for _, col := range []*[]byte{&r.secrets, &r.passwrd} {
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
				if _, err := tx.Exec(ctx, `UPDATE endpoints SET secrets = $2, password = $3 WHERE id = $1`, r.id, r.secrets, r.passwrd); err != nil {
					return fmt.Errorf("endpoint %s: %w", r.id, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: reseal secrets: %w", err)
	}
	return changed, nil
}
