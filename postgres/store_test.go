package postgres

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/storetest"
)

func TestStoreSuite(t *testing.T) {
	requirePG(t)
	storetest.Run(t, func(t *testing.T) kinehook.Store {
		return openTestStore(t, Options{})
	})
}

func TestSecretsAtRest(t *testing.T) {
	requirePG(t)
	storetest.RunSecretsAtRest(t, func(t *testing.T, box kinehook.SecretBox) (kinehook.Store, func() []byte) {
		s := openTestStore(t, Options{SecretBox: box})
		return s, func() []byte { return dumpTables(t, s) }
	})
}

// dumpTables returns every row of every kinehook table as text.
func dumpTables(t testing.TB, s *Store) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, table := range []string{"settings", "projects", "endpoints", "events", "idempotency_keys", "deliveries", "attempts"} {
		rows, err := s.pool.Query(context.Background(), "SELECT * FROM "+table)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatalf("dump %s: %v", table, err)
			}
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					buf.Write(b) // bytea as the raw bytes stored
				} else {
					fmt.Fprint(&buf, v)
				}
				buf.WriteByte('\t')
			}
			buf.WriteByte('\n')
		}
		rows.Close()
	}
	return buf.Bytes()
}
