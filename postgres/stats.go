package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
)

// statsShards is how many rows one bucket of one endpoint may be split
// into: each process writes its own shard (statsShard), so instances
// recording results of one endpoint at once never wait on each other's row
// locks; reads sum the shards.
const statsShards = 16

var statsShard = int16(rand.IntN(statsShards))

// statsCounterCols are endpoint_stats' counter columns, in StatsCounts order:
// succeeded, failed, retried, min_ms, max_ms, then the latency bins.
var statsCounterCols = func() []string {
	cols := []string{"succeeded", "failed", "retried", "min_ms", "max_ms"}
	for i := range kinehook.LatencyBins {
		cols = append(cols, fmt.Sprintf("l%02d", i))
	}
	return cols
}()

// statsUpsert adds a commit's increments (a column array each) to their
// buckets in one statement. Rows of a project deleted meanwhile are left
// out rather than failing the commit on the foreign key.
var statsUpsert = func() string {
	types := []string{"text", "int", "bigint", "text", "bigint", "bigint", "bigint", "float8", "float8"}
	for range kinehook.LatencyBins {
		types = append(types, "bigint")
	}
	params := make([]string, len(types))
	for i, t := range types {
		params[i] = fmt.Sprintf("$%d::%s[]", i+2, t)
	}
	set := make([]string, len(statsCounterCols))
	for i, c := range statsCounterCols {
		set[i] = fmt.Sprintf("%s = s.%s + excluded.%s", c, c, c)
		if c == "max_ms" {
			set[i] = "max_ms = greatest(s.max_ms, excluded.max_ms)"
		}
		if c == "min_ms" {
			set[i] = "min_ms = least(s.min_ms, excluded.min_ms)"
		}
	}
	cols := strings.Join(statsCounterCols, ", ")
	return `INSERT INTO endpoint_stats AS s (endpoint_id, bucket_seconds, start, project_id, ` + cols + `, shard)
		SELECT u.*, $1::smallint FROM unnest(` + strings.Join(params, ", ") + `) AS u(endpoint_id, bucket_seconds, start, project_id, ` + cols + `)
		WHERE EXISTS (SELECT 1 FROM projects p WHERE p.id = u.project_id)
		ON CONFLICT (endpoint_id, bucket_seconds, start, shard) DO UPDATE SET ` + strings.Join(set, ", ")
}()

// statsArgs are statsUpsert's arguments for results: the increments of the
// batch aggregated per bucket (kinehook.RollupAttempts), a column each.
func statsArgs(results []kinehook.AttemptResult) []any {
	incs := kinehook.RollupAttempts(results, time.Now())
	var (
		eps, pids     []string
		sizes         []int32
		starts        []int64
		succ, fl, ret []int64
		minMS, maxMS  []float64
		bins          [kinehook.LatencyBins][]int64
	)
	for i := range incs {
		k, c := &incs[i].Key, &incs[i].Counts
		if k.EndpointID == "" {
			continue // a delivery gone meanwhile
		}
		eps, sizes, starts, pids = append(eps, k.EndpointID), append(sizes, int32(k.BucketSeconds)), append(starts, k.Start), append(pids, k.ProjectID)
		succ, fl, ret = append(succ, c.Succeeded), append(fl, c.Failed), append(ret, c.Retried)
		minMS, maxMS = append(minMS, c.MinMS), append(maxMS, c.MaxMS)
		for j, v := range c.Latency {
			bins[j] = append(bins[j], v)
		}
	}
	args := []any{statsShard, eps, sizes, starts, pids, succ, fl, ret, minMS, maxMS}
	for j := range bins {
		if bins[j] == nil {
			bins[j] = []int64{}
		}
		args = append(args, bins[j])
	}
	return args
}

// withEndpoints returns results with every EndpointID and ProjectID filled
// in: the engine sets them, other callers may not (their deliveries are
// looked up). Results of deliveries that do not exist keep them empty.
func (s *Store) withEndpoints(ctx context.Context, results []kinehook.AttemptResult) ([]kinehook.AttemptResult, error) {
	var ids []string
	for i := range results {
		if results[i].EndpointID == "" {
			ids = append(ids, results[i].Attempt.DeliveryID)
		}
	}
	if len(ids) == 0 {
		return results, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, endpoint_id, project_id FROM deliveries WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrap("statistics: endpoints of deliveries", err)
	}
	owners := map[string][2]string{}
	var id string
	var o [2]string
	_, err = pgx.ForEachRow(rows, []any{&id, &o[0], &o[1]}, func() error {
		owners[id] = o
		return nil
	})
	if err != nil {
		return nil, wrap("statistics: endpoints of deliveries", err)
	}
	out := make([]kinehook.AttemptResult, len(results))
	copy(out, results)
	for i := range out {
		if out[i].EndpointID == "" {
			o := owners[out[i].Attempt.DeliveryID]
			out[i].EndpointID, out[i].ProjectID = o[0], o[1]
		}
	}
	return out, nil
}

// Stats returns the stored buckets q selects, summed over shards and, when
// q names no endpoint, over the project's endpoints.
func (s *Store) Stats(ctx context.Context, q kinehook.StatsQuery) ([]kinehook.StatsRow, error) {
	sums := make([]string, len(statsCounterCols))
	for i, c := range statsCounterCols {
		sums[i] = "sum(" + c + ")::bigint"
		if c == "max_ms" || c == "min_ms" {
			sums[i] = c[:3] + "(" + c + ")"
		}
	}
	query := `SELECT start, ` + strings.Join(sums, ", ") + ` FROM endpoint_stats
		WHERE project_id = $1 AND bucket_seconds = $2 AND start >= $3 AND start < $4`
	args := []any{q.ProjectID, q.BucketSeconds, q.From.Unix(), q.To.Unix()}
	if q.EndpointID != "" {
		query += ` AND endpoint_id = $5`
		args = append(args, q.EndpointID)
	}
	rows, err := s.pool.Query(ctx, query+` GROUP BY start ORDER BY start`, args...)
	if err != nil {
		return nil, wrap("statistics", err)
	}
	defer rows.Close()
	var out []kinehook.StatsRow
	for rows.Next() {
		var start int64
		var r kinehook.StatsRow
		c := &r.Counts
		dest := []any{&start, &c.Succeeded, &c.Failed, &c.Retried, &c.MinMS, &c.MaxMS}
		for i := range c.Latency {
			dest = append(dest, &c.Latency[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, wrap("statistics", err)
		}
		r.Start = time.Unix(start, 0).UTC()
		out = append(out, r)
	}
	return out, wrap("statistics", rows.Err())
}

// PruneStats removes the rollups older than their resolution keeps them.
func (s *Store) PruneStats(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, r := range kinehook.StatsResolutions {
		tag, err := s.pool.Exec(ctx, `DELETE FROM endpoint_stats WHERE bucket_seconds = $1 AND start < $2`, r.Seconds, now.Add(-r.Keep).Unix())
		if err != nil {
			return total, wrap("prune statistics", err)
		}
		total += int(tag.RowsAffected())
	}
	return total, nil
}
