package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook/internal/pgtest"
	"github.com/kinehook/kinehook/storetest"
)

// BenchmarkSearchScale fills a fresh database with a million deliveries
// (KINEHOOK_SEARCH_DELIVERIES to change it), sets their statuses (1 in 97
// failed, 1 in 89 retrying, the last 2,000 events' pending, the rest
// succeeded), prints the plan of each search, and times their first page:
//
//	go test -run '^$' -bench BenchmarkSearchScale -benchtime 200x ./postgres
func BenchmarkSearchScale(b *testing.B) {
	requirePG(b)
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("KINEHOOK_SEARCH_DELIVERIES")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	dsn, drop, err := pgtest.Create(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer drop()
	if _, err := Migrate(ctx, dsn); err != nil {
		b.Fatal(err)
	}
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	sc := storetest.FillSearchScale(b, s, n)
	filled := time.Since(start)
	if _, err := s.pool.Exec(ctx, `UPDATE deliveries SET status = CASE
		WHEN seq % 97 = 0 THEN 'failed' WHEN seq % 89 = 0 THEN 'retrying'
		WHEN seq > (SELECT max(seq) - 2000 FROM events) THEN 'pending' ELSE 'succeeded' END`); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{`VACUUM ANALYZE deliveries`, `ANALYZE events`} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	fmt.Printf("search scale: %d deliveries of %d events in the project, filled in %s, statuses set in %s\n",
		sc.Deliveries, sc.Events, filled.Round(time.Second), (time.Since(start) - filled).Round(time.Second))
	for _, tc := range sc.SearchCases() {
		f := tc.F
		f.Limit = 50
		lo, hi, err := s.seqRange(ctx, f.Since, f.Until)
		if err != nil {
			b.Fatal(err)
		}
		q, args, err := searchQuery(sc.Project.ID, &f, 50, lo, hi)
		if err != nil {
			b.Fatal(err)
		}
		rows, err := s.pool.Query(ctx, "EXPLAIN (COSTS OFF) "+q, args...)
		if err != nil {
			b.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				b.Fatal(err)
			}
			if strings.Contains(line, "Scan") {
				plan = append(plan, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "->")))
			}
		}
		rows.Close()
		fmt.Printf("plan %s: %s\n", tc.Name, strings.Join(plan, "; "))
	}
	storetest.BenchSearch(b, s, sc)
}
