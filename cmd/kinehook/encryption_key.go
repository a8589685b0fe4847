package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/secretbox"
	"github.com/kinehook/kinehook/postgres"
	"github.com/kinehook/kinehook/sqlite"
)

func init() { rootCmd.AddCommand(newEncryptionKeyCmd()) }

func newEncryptionKeyCmd() *cobra.Command {
	cmd := apiGroup(&cobra.Command{
		Use:   "encryption-key",
		Short: "Generate or rotate the key that encrypts secrets at rest",
		Long: `Endpoint signing secrets, Basic Auth credentials and custom header values are stored encrypted
(AES-256-GCM). The key comes from ` + secretbox.EnvKey + ` (base64, 32 bytes;
"NEW,OLD" during a rotation: seal with the first, open with any) or, for the
embedded store only, from <data>/` + secretbox.KeyFileName + ` (generated with mode 0600
on first start). PostgreSQL requires ` + secretbox.EnvKey + `.`,
	})
	cmd.AddCommand(newEncryptionKeyGenerateCmd(), newEncryptionKeyRotateCmd())
	return cmd
}

func newEncryptionKeyGenerateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "generate",
		Short: "Print a new random encryption key (base64, 32 bytes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := secretbox.GenerateKey()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), k)
			return err
		},
	}
}

func newEncryptionKeyRotateCmd() *cobra.Command {
	var (
		data, database string
		timeout        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-encrypt every stored secret with the newest key",
		Long: `Re-encrypt every stored secret with the key that seals (the first one).

With ` + secretbox.EnvKey + ` (always the case with PostgreSQL):
  1. NEW=$(kinehook encryption-key generate)
  2. restart every instance with ` + secretbox.EnvKey + `="$NEW,$OLD"
     (new secrets are sealed with NEW, old ones still open with OLD)
  3. ` + secretbox.EnvKey + `="$NEW,$OLD" kinehook encryption-key rotate --database URL
  4. restart every instance with ` + secretbox.EnvKey + `="$NEW" and destroy OLD.

With the generated key file of the embedded store: stop the server, run
  kinehook encryption-key rotate --data DIR
which puts a new key in front of the old one in the key file, re-encrypts
every secret, then leaves only the new key in the file; start the server
again. If it is interrupted, the key file still holds both keys and every
secret stays readable: run it again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("data") {
				if v, ok := os.LookupEnv("KINEHOOK_DATA"); ok {
					data = v
				}
			}
			if !cmd.Flags().Changed("database") {
				if v, ok := os.LookupEnv("KINEHOOK_DATABASE"); ok {
					database = v
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return runEncryptionKeyRotate(ctx, data, database, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&data, "data", "./kinehook-data", "data directory of the embedded store (env KINEHOOK_DATA)")
	f.StringVar(&database, "database", "", "PostgreSQL URL, postgres://... (env KINEHOOK_DATABASE); selects PostgreSQL instead of --data")
	f.DurationVar(&timeout, "timeout", 30*time.Minute, "give up after this long")
	return cmd
}

// resealStore is a store that can re-seal its secrets. Both stores are
// (their abilities.go checks it at compile time), so opening one gives it
// without a type assertion that could fail at run time.
type resealStore interface {
	kinehook.Resealer
	Close() error
}

// runEncryptionKeyRotate re-seals every secret of the store in data (or
// database) with the primary key, rotating the key file first when the key
// comes from it.
func runEncryptionKeyRotate(ctx context.Context, data, database string, out io.Writer) error {
	pg := database != ""
	if pg && !strings.HasPrefix(database, "postgres://") && !strings.HasPrefix(database, "postgresql://") {
		return fmt.Errorf("--database %q is not a postgres:// URL; leave it empty for the embedded store in --data", redactURL(database))
	}
	dbPath := filepath.Join(data, "kinehook.db")
	if !pg {
		if _, err := os.Stat(dbPath); err != nil {
			return fmt.Errorf("no embedded store at %s (wrong --data?): %w", dbPath, err)
		}
	}
	box, finish, err := rotationBox(pg, data, out)
	if err != nil {
		return err
	}
	st, err := openResealStore(ctx, pg, dbPath, database, box)
	if err != nil {
		return err
	}
	n, err := secretbox.Rotate(ctx, st, box)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close store: %w", cerr)
	}
	if err != nil {
		if finish != nil {
			return fmt.Errorf("%w; the key file keeps both keys, so every secret is still readable: run rotate again", err)
		}
		return err
	}
	fmt.Fprintf(out, "re-sealed %d secrets with key %s\n", n, box.PrimaryKeyID())
	return finishRotation(box, finish, out)
}

// rotationBox is the key set to re-seal with: from the environment
// (required with PostgreSQL), else the key file of data with a new key put
// in front, finish then dropping the old keys from the file.
func rotationBox(pg bool, data string, out io.Writer) (box *secretbox.Box, finish func() error, err error) {
	switch _, envSet, envErr := secretbox.FromEnv(); {
	case envErr != nil:
		return nil, nil, envErr
	case pg:
		box, err = secretbox.LoadRequired()
		return box, nil, err
	case envSet:
		box, _, err = secretbox.FromEnv()
		return box, nil, err
	}
	rot, err := secretbox.BeginFileRotation(data)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("neither %s nor a key file in %s: there is no key to rotate (%w)", secretbox.EnvKey, data, err)
	}
	if err != nil {
		return nil, nil, err
	}
	box = rot.Box
	fmt.Fprintf(out, "key file %s: new key %s added in front of %s\n", filepath.Join(data, secretbox.KeyFileName), box.PrimaryKeyID(), strings.Join(box.KeyIDs()[1:], ", "))
	return box, rot.Finish, nil
}

// finishRotation drops the old keys from the key file (finish) or, with
// keys from the environment, says what to do with them.
func finishRotation(box *secretbox.Box, finish func() error, out io.Writer) error {
	if finish != nil {
		if err := finish(); err != nil {
			return fmt.Errorf("every secret is re-sealed, but dropping the old key from the key file failed (the file keeps both keys): %w", err)
		}
		fmt.Fprintf(out, "key file now holds only key %s\n", box.PrimaryKeyID())
		return nil
	}
	if ids := box.KeyIDs(); len(ids) > 1 {
		fmt.Fprintf(out, "every secret is sealed with the first key; restart the servers with only it in %s (drop %s)\n", secretbox.EnvKey, strings.Join(ids[1:], ", "))
	} else {
		fmt.Fprintf(out, "%s holds a single key: to rotate, put a new key in front of it (\"NEW,OLD\") and run rotate again\n", secretbox.EnvKey)
	}
	return nil
}

// openResealStore opens the store with box.
func openResealStore(ctx context.Context, pg bool, dbPath, database string, box kinehook.SecretBox) (resealStore, error) {
	if pg {
		st, err := postgres.Open(ctx, database, postgres.Options{SecretBox: box})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL %s: %w", redactURL(database), err)
		}
		return st, nil
	}
	st, err := sqlite.Open(ctx, dbPath, sqlite.Options{SecretBox: box})
	if err != nil {
		return nil, fmt.Errorf("open the embedded store %s: %w", dbPath, err)
	}
	return st, nil
}
