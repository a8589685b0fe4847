package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	nethttp "net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/delivery"
	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/postgres"
	"github.com/kinehook/kinehook/sqlite"
)

func TestServeEnvNames(t *testing.T) {
	tests := map[string]string{
		"addr":                   "KINEHOOK_ADDR",
		"data":                   "KINEHOOK_DATA",
		"database":               "KINEHOOK_DATABASE",
		"allow-private-networks": "KINEHOOK_ALLOW_PRIVATE_NETWORKS",
		"allow-cidr":             "KINEHOOK_ALLOW_CIDR",
		"retry-schedule":         "KINEHOOK_RETRY_SCHEDULE",
		"request-timeout":        "KINEHOOK_REQUEST_TIMEOUT",
		"log-format":             "KINEHOOK_LOG_FORMAT",
		"log-level":              "KINEHOOK_LOG_LEVEL",
		"breaker-threshold":      "KINEHOOK_BREAKER_THRESHOLD",
		"disable-after":          "KINEHOOK_DISABLE_AFTER",
	}
	cmd := newServeCmd()
	for flag, env := range tests {
		if cmd.Flags().Lookup(flag) == nil {
			t.Errorf("serve has no --%s flag", flag)
		}
		if got := serveEnvName(flag); got != env {
			t.Errorf("serveEnvName(%q) = %q, want %q", flag, got, env)
		}
	}
}

func TestServeApplyEnv(t *testing.T) {
	env := map[string]string{
		"KINEHOOK_ADDR":                   "127.0.0.1:9999",
		"KINEHOOK_DATA":                   "/from/env",
		"KINEHOOK_ALLOW_PRIVATE_NETWORKS": "true",
		"KINEHOOK_REQUEST_TIMEOUT":        "3s",
		"KINEHOOK_ALLOW_CIDR":             "10.0.0.0/8,192.168.1.0/24",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cmd := newServeCmd()
	if err := cmd.Flags().Parse([]string{"--data", "/from/flag"}); err != nil {
		t.Fatal(err)
	}
	if err := serveApplyEnv(cmd.Flags(), lookup); err != nil {
		t.Fatal(err)
	}
	get := func(name string) string { return cmd.Flags().Lookup(name).Value.String() }
	checks := []struct{ flag, want string }{
		{"addr", "127.0.0.1:9999"},
		{"data", "/from/flag"}, // the flag beats the environment
		{"allow-private-networks", "true"},
		{"request-timeout", "3s"},
		{"allow-cidr", `["10.0.0.0/8,192.168.1.0/24"]`}, // split on commas by netguard.ParseCIDRs
		{"log-format", "text"},                          // unset in the environment: the default
	}
	for _, c := range checks {
		if got := get(c.flag); got != c.want {
			t.Errorf("--%s = %q, want %q", c.flag, got, c.want)
		}
	}
	bad := newServeCmd()
	err := serveApplyEnv(bad.Flags(), func(k string) (string, bool) {
		if k == "KINEHOOK_REQUEST_TIMEOUT" {
			return "soon", true
		}
		return "", false
	})
	if err == nil || !strings.Contains(err.Error(), "KINEHOOK_REQUEST_TIMEOUT") {
		t.Errorf("a bad env value: %v", err)
	}
}

// TestNever: a flag's 0 turns the feature off, which the engine spells as
// a negative value (its 0 is the default).
func TestNever(t *testing.T) {
	if never(0) != -1 || never(7) != 7 || never(time.Duration(0)) != -1 || never(time.Hour) != time.Hour {
		t.Errorf("never: %d %d %v %v", never(0), never(7), never(time.Duration(0)), never(time.Hour))
	}
}

func TestParseRetrySchedule(t *testing.T) {
	tests := []struct {
		in   string
		want []time.Duration
		ok   bool
	}{
		{"5s,5m,30m,2h,5h,10h,10h", []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}, true},
		{" 100ms , 1s ", []time.Duration{100 * time.Millisecond, time.Second}, true},
		{"none", []time.Duration{}, true},
		{" none ", []time.Duration{}, true},
		{"", nil, false},
		{"5", nil, false},
		{"1s,,2s", nil, false},
		{"-1s", nil, false},
		{"0s", nil, false},
	}
	for _, tc := range tests {
		got, err := parseRetrySchedule(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if tc.ok && (len(got) != len(tc.want) || (len(got) > 0 && got[len(got)-1] != tc.want[len(tc.want)-1])) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestServeRefusesBadSettings(t *testing.T) {
	t.Setenv("KINEHOOK_ENCRYPTION_KEY", "")
	base := func() *serveOptions {
		return &serveOptions{addr: "127.0.0.1:0", data: t.TempDir(), retrySchedule: "1s", requestTimeout: time.Second, logFormat: "text", logLevel: "info", shutdownTimeout: time.Second}
	}
	tests := []struct {
		name string
		mod  func(o *serveOptions)
		want string
	}{
		{"database scheme", func(o *serveOptions) { o.database = "mysql://u:secret@h/db" }, "not a postgres:// URL"},
		{"postgres without encryption key", func(o *serveOptions) { o.database = "postgres://u:secret@127.0.0.1:1/db" }, "KINEHOOK_ENCRYPTION_KEY must be set"},
		{"log format", func(o *serveOptions) { o.logFormat = "xml" }, "--log-format"},
		{"log level", func(o *serveOptions) { o.logLevel = "loud" }, "--log-level"},
		{"retry schedule", func(o *serveOptions) { o.retrySchedule = "soon" }, "--retry-schedule"},
		{"request timeout", func(o *serveOptions) { o.requestTimeout = 0 }, "--request-timeout"},
		{"cidr", func(o *serveOptions) { o.allowCIDR = []string{"not-a-cidr"} }, "--allow-cidr"},
		{"breaker threshold", func(o *serveOptions) { o.breakerAfter = -1 }, "--breaker-threshold"},
		{"disable after", func(o *serveOptions) { o.disableAfter = -time.Hour }, "--disable-after"},
		{"memory limit", func(o *serveOptions) { o.memoryLimit = "huge" }, "--memory-limit"},
		{"gc percent", func(o *serveOptions) { o.gcPercent = -1 }, "--gc-percent"},
		{"addr", func(o *serveOptions) { o.addr = "127.0.0.1:99999" }, "listen"},
		{"empty addr", func(o *serveOptions) { o.addr = " " }, "--addr is empty"},
		{"empty retry schedule", func(o *serveOptions) { o.retrySchedule = "" }, "--retry-schedule is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base()
			tc.mod(o)
			var out, errb bytes.Buffer
			err := runServe(context.Background(), o, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.want)
			}

			if strings.Contains(err.Error(), "secret") {
				t.Errorf("the error shows the database password: %v", err)
			}
		})
	}
}

// TestServeRefusesShortAdminKey: serve stops, before it creates a store,
// on an admin key shorter than 16 characters from KINEHOOK_ADMIN_KEY or
// from bench, and the message gives the length and the fix, not the key.
func TestServeRefusesShortAdminKey(t *testing.T) {
	tests := []struct {
		name, env, opt string
	}{
		{"environment", "secret", ""},
		{"one character", "x", ""},
		{"bench", "", "secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(serveAdminKeyEnv, tc.env)
			data := filepath.Join(t.TempDir(), "data")
			o := &serveOptions{addr: "127.0.0.1:0", data: data, retrySchedule: "1s", requestTimeout: time.Second, logFormat: "text", logLevel: "info", shutdownTimeout: time.Second, adminKey: tc.opt}
			var out, errb bytes.Buffer
			err := runServe(context.Background(), o, &out, &errb)
			n := len(tc.env + tc.opt)
			want := fmt.Sprintf("KINEHOOK_ADMIN_KEY is %d characters long; an admin key must have at least 16 (use 32 random bytes", n)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err %v; want %q", err, want)
			}
			if strings.Contains(err.Error(), tc.env+tc.opt+" ") {
				t.Errorf("the error shows the key: %v", err)
			}
			if _, serr := os.Stat(data); !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("the data directory was created (%v)", serr)
			}
		})
	}
}

func TestEnsureAdminKey(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	var out bytes.Buffer
	if err := ensureAdminKey(ctx, st, "", &out, log); err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(out.String()[strings.LastIndex(out.String(), " ")+1:])
	if !strings.HasPrefix(key, "kh_admin_") || len(key) < 40 {
		t.Fatalf("printed %q", out.String())
	}
	h, err := st.AdminKeyHash(ctx)
	if err != nil || !bytes.Equal(h, kinehook.HashKey(key)) {
		t.Fatalf("stored hash does not match the printed key: %v", err)
	}
	out.Reset()
	if err := ensureAdminKey(ctx, st, "", &out, log); err != nil || out.Len() != 0 {
		t.Fatalf("second start printed %q (err %v)", out.String(), err)
	}
	if err := ensureAdminKey(ctx, st, "kh_admin_from_env", &out, log); err != nil || out.Len() != 0 {
		t.Fatalf("env key: %v, printed %q", err, out.String())
	}
	h, _ = st.AdminKeyHash(ctx)
	if !bytes.Equal(h, kinehook.HashKey("kh_admin_from_env")) {
		t.Error("KINEHOOK_ADMIN_KEY did not replace the stored key")
	}
	// A key shorter than 16 characters is refused, without showing it,
	// and the stored key stays.
	for _, short := range []string{"Q", "abc", "kh_admin_abcdef", "ключ-админа-15с"} {
		err := ensureAdminKey(ctx, st, short, &out, log)
		if err == nil || !strings.Contains(err.Error(), "at least 16") || strings.Contains(err.Error(), short) {
			t.Errorf("key of %d characters: %v; want a refusal naming the minimum, not the key", len([]rune(short)), err)
		}
	}
	if h, _ = st.AdminKeyHash(ctx); !bytes.Equal(h, kinehook.HashKey("kh_admin_from_env")) {
		t.Error("a refused short key replaced the stored key")
	}
	var logs bytes.Buffer
	warn := slog.New(slog.NewTextHandler(&logs, nil))
	for _, ok := range []string{"kh_admin_abcdefg", "ключ-админа-16сим", "kh_admin_long_enough_key"} {
		if err := ensureAdminKey(ctx, st, ok, &out, warn); err != nil || logs.Len() != 0 {
			t.Errorf("key of %d characters: err %v, logged %q", len([]rune(ok)), err, logs.String())
		}
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"100MiB", 100 << 20, true},
		{"1GiB", 1 << 30, true},
		{"512KiB", 512 << 10, true},
		{"4096", 4096, true},
		{"4096B", 4096, true},
		{"0", 0, true},
		{"", 0, true},
		{" 2 MiB ", 2 << 20, true},
		{"100MB", 0, false},
		{"-1", 0, false},
		{"lots", 0, false},
		{"99999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// The delivery client keeps as many idle connections to one host as the
// engine may have in flight: with the transport's smaller default pool, ten
// endpoints on one receiver redialled after every burst. It keeps no more
// either, over all hosts: after a fan-out to 10,000 endpoints, 2,048 idle
// connections stayed (with two goroutines each) under a 100 MiB limit.
func TestDeliveryClientKeepsConnectionsForFullConcurrency(t *testing.T) {
	for _, inFlight := range []int{delivery.MaxInFlightFor(100 << 20), delivery.DefaultMaxInFlight} {
		c := deliveryClient(&serveOptions{requestTimeout: time.Second}, nil, inFlight)
		tr, ok := c.Transport.(*nethttp.Transport)
		if !ok {
			t.Fatalf("transport %T", c.Transport)
		}
		if tr.MaxIdleConnsPerHost != inFlight || tr.MaxIdleConns != inFlight {
			t.Errorf("idle connections per host %d, over all hosts %d; want the engine's in-flight bound %d for both", tr.MaxIdleConnsPerHost, tr.MaxIdleConns, inFlight)
		}
	}
	c := deliveryClient(&serveOptions{requestTimeout: time.Second}, nil, delivery.DefaultMaxInFlight)
	tr := c.Transport.(*nethttp.Transport)
	if tr.Proxy != nil {
		t.Error("the delivery transport honours a proxy, which would bypass the network guard")
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:pw@127.0.0.1:5432/db", "postgres://***@127.0.0.1:5432/db"},
		{"postgres://u:p@ss@127.0.0.1/db", "postgres://***@127.0.0.1/db"},
		{"postgres://127.0.0.1/db?sslmode=disable&password=QueryPw&user=u", "postgres://127.0.0.1/db?password=***&sslmode=disable&user=***"},
		{"postgres://u:pw@127.0.0.1/db?password=x", "postgres://***@127.0.0.1/db?password=***"},
		{"postgres://127.0.0.1/db", "postgres://127.0.0.1/db"},
		{"postgres://u:pw@[::1/db", "postgres://***"},
	}
	for _, tc := range tests {
		got := redactURL(tc.in)
		if got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		for _, secret := range []string{"pw", "QueryPw", "ss@"} {
			if strings.Contains(got, secret) && strings.Contains(tc.in, secret) {
				t.Errorf("redactURL(%q) = %q keeps %q", tc.in, got, secret)
			}
		}
	}
}

// TestSetGCPercent: serve sets the collector's target from --gc-percent,
// unless GOGC is set or the flag is 0.
func TestSetGCPercent(t *testing.T) {
	tests := []struct {
		name string
		gogc string
		p    int
		want int // the target afterwards; the test starts it at 100
	}{
		{"flag", "", 200, 200},
		{"GOGC wins", "150", 200, 100},
		{"0 leaves Go's", "", 0, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOGC", tc.gogc)
			prev := debug.SetGCPercent(100)
			defer debug.SetGCPercent(prev)
			setGCPercent(tc.p)
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GC target %d, want %d", got, tc.want)
			}
		})
	}
}

// TestCommitLingers: the lingers follow the store opened, real ones of
// each kind: the embedded store keeps the engine's long lingers (0: its
// defaults); PostgreSQL gets the short one for both writers.
func TestCommitLingers(t *testing.T) {
	lite, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	pg, err := postgres.Open(t.Context(), pgtest.New(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	tests := []struct {
		name           string
		st             kinehook.Store
		ingest, result time.Duration
	}{
		{"embedded store", lite, 0, 0},
		{"postgres", pg, delivery.ShortLinger, delivery.ShortLinger},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ingest, result := commitLingers(tc.st)
			if ingest != tc.ingest || result != tc.result {
				t.Errorf("lingers %v, %v; want %v, %v", ingest, result, tc.ingest, tc.result)
			}
		})
	}
}
