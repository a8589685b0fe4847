// Command statussync is a runnable Kinescope webhook receiver built on the
// kinehook SDK: it keeps a SQLite table of videos (status, error message,
// updated_at) and one of live events (status, recording video id,
// finished_at), and notifies (by default: logs) when a video is done, fails
// or is aborted and when a stream's recording is available. The tables and
// the Syncer are in the importable package examples/statussync/statussync;
// this program adds the flags and the HTTP server.
//
//	go run ./examples/statussync --addr 127.0.0.1:8090 --db statussync.db --secret whsec_...
//	KINEHOOK_SECRET=whsec_... go run ./examples/statussync
//	go run ./examples/statussync --basic-auth kinescope:s3cret   # as Kinescope itself sends
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/examples/statussync/statussync"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "statussync:", err)
		os.Exit(1)
	}
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// config is what the flags and environment say.
type config struct {
	addr       string
	db         string
	secrets    []string
	publicKeys []string
	basicAuth  *kinehook.BasicAuth
	insecure   bool
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("statussync", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	var secrets, keys multiFlag
	var basic string
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8090", "address to listen on")
	fs.StringVar(&c.db, "db", "statussync.db", "SQLite database file")
	fs.Var(&secrets, "secret", "whsec_ signing secret (repeatable; env KINEHOOK_SECRET, comma-separated)")
	fs.Var(&keys, "public-key", "whpk_ public key for v1a signatures (repeatable)")
	fs.StringVar(&basic, "basic-auth", "", "LOGIN:PASSWORD required as HTTP Basic Auth (env KINEHOOK_BASIC_AUTH)")
	fs.BoolVar(&c.insecure, "insecure", false, "accept requests without any credential (local experiments only)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if len(secrets) == 0 {
		for _, s := range strings.Split(getenv("KINEHOOK_SECRET"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				secrets = append(secrets, s)
			}
		}
	}
	if basic == "" {
		basic = getenv("KINEHOOK_BASIC_AUTH")
	}
	if basic != "" {
		login, password, ok := strings.Cut(basic, ":")
		if !ok || login == "" {
			return nil, errors.New("--basic-auth: want LOGIN:PASSWORD")
		}
		c.basicAuth = &kinehook.BasicAuth{Login: login, Password: password}
	}
	c.secrets, c.publicKeys = secrets, keys
	if len(c.secrets)+len(c.publicKeys) == 0 && c.basicAuth == nil && !c.insecure {
		return nil, errors.New("no credential: give --secret (or KINEHOOK_SECRET), --public-key or --basic-auth, or --insecure")
	}
	return c, nil
}

// run serves until ctx ends. ready, when set, receives the bound address.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ready func(addr string)) error {
	c, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	store, err := statussync.OpenStore(ctx, c.db)
	if err != nil {
		return err
	}
	defer store.Close()
	syncer := &statussync.Syncer{Store: store, Notifier: statussync.LogNotifier{Logger: logger}}
	h, err := kinehook.NewHandler(syncer.HandlerOptions(kinehook.HandlerOptions{
		Secrets:              c.secrets,
		PublicKeys:           c.publicKeys,
		BasicAuth:            c.basicAuth,
		AllowUnauthenticated: c.insecure,
		Logger:               logger,
	}))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("statussync listening", "addr", ln.Addr().String(), "db", c.db)
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
