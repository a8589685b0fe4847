package app

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/sqlite"
)

// BenchmarkAuthenticate measures the key check on every API request (the
// ingest hot path): a project key looked up once, then served from the
// cache, in parallel.
//
//	go test -run '^$' -bench Authenticate ./app
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const key = "kh_bench_key_0123456789abcdefghijklmnopqrstuvw"
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "bench"}
	if err := st.CreateProject(ctx, p, kinehook.HashKey(key)); err != nil {
		b.Fatal(err)
	}
	a, err := New(Config{Store: st, Dispatcher: &recorder{store: st}, AdminKeyHash: kinehook.HashKey("kh_admin_bench")})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, key); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Authenticate(ctx, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
