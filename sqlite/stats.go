package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// statsCounterCols are endpoint_stats' counter columns, in StatsCounts order:
// succeeded, failed, retried, min_ms, max_ms, then the latency bins.
var statsCounterCols = func() []string {
	cols := []string{"succeeded", "failed", "retried", "min_ms", "max_ms"}
	for i := range kinehook.LatencyBins {
		cols = append(cols, fmt.Sprintf("l%02d", i))
	}
	return cols
}()

// statsUpsert adds a commit's increments to their buckets: one multi-row
// upsert per commit (prepared with the bulk inserts). Rows of a project
// deleted meanwhile are left out rather than failing the commit on the
// foreign key.
var statsUpsert = func() bulkInsert {
	set := make([]string, len(statsCounterCols))
	for i, c := range statsCounterCols {
		set[i] = fmt.Sprintf("%s = %s + excluded.%s", c, c, c)
		if c == "max_ms" || c == "min_ms" {
			set[i] = fmt.Sprintf("%s = %s(%s, excluded.%s)", c, c[:3], c, c)
		}
	}
	n := 4 + len(statsCounterCols)
	return bulkInsert{
		head: `INSERT INTO endpoint_stats (endpoint_id, bucket_seconds, start, project_id, ` + strings.Join(statsCounterCols, ", ") + `)
			SELECT * FROM (VALUES `,
		row: "(" + placeholders(n) + ")",
		tail: `) AS v WHERE EXISTS (SELECT 1 FROM projects p WHERE p.id = v.column4)
			ON CONFLICT (endpoint_id, bucket_seconds, start) DO UPDATE SET ` + strings.Join(set, ", "),
		cols: n,
	}
}()

// recordStats adds results to the statistics rollups inside the
// RecordAttempts transaction tx.
func (s *Store) recordStats(ctx context.Context, tx *sql.Tx, results []kinehook.AttemptResult) error {
	results, err := withEndpoints(ctx, tx, results)
	if err != nil {
		return err
	}
	incs := kinehook.RollupAttempts(results, time.Now())
	args := make([]any, 0, len(incs)*statsUpsert.cols)
	for i := range incs {
		k, c := &incs[i].Key, &incs[i].Counts
		if k.EndpointID == "" {
			continue // a delivery gone meanwhile
		}
		args = append(args, k.EndpointID, k.BucketSeconds, k.Start, k.ProjectID, c.Succeeded, c.Failed, c.Retried, c.MinMS, c.MaxMS)
		for _, v := range c.Latency {
			args = append(args, v)
		}
	}
	if _, err := s.bulk(ctx, tx, &statsUpsert, args, nil); err != nil {
		return fmt.Errorf("statistics: %w", err)
	}
	return nil
}

// withEndpoints returns results with every EndpointID and ProjectID filled
// in: the engine sets them, other callers may not (their deliveries are
// looked up in tx). Results of deliveries that do not exist keep them empty.
func withEndpoints(ctx context.Context, tx *sql.Tx, results []kinehook.AttemptResult) ([]kinehook.AttemptResult, error) {
	var ids []string
	for i := range results {
		if results[i].EndpointID == "" {
			ids = append(ids, results[i].Attempt.DeliveryID)
		}
	}
	if len(ids) == 0 {
		return results, nil
	}
	type owner struct{ endpoint, project string }
	owners := make(map[string]owner, len(ids))
	for start := 0; start < len(ids); start += chunkSize {
		chunk := ids[start:min(start+chunkSize, len(ids))]
		rows, err := tx.QueryContext(ctx, `SELECT id, endpoint_id, project_id FROM deliveries WHERE id IN (`+placeholders(len(chunk))+`)`, anySlice(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("statistics: endpoints of deliveries: %w", err)
		}
		for rows.Next() {
			var id string
			var o owner
			if err := rows.Scan(&id, &o.endpoint, &o.project); err != nil {
				rows.Close()
				return nil, fmt.Errorf("statistics: endpoints of deliveries: %w", err)
			}
			owners[id] = o
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("statistics: endpoints of deliveries: %w", err)
		}
	}
	out := make([]kinehook.AttemptResult, len(results))
	copy(out, results)
	for i := range out {
		if out[i].EndpointID == "" {
			o := owners[out[i].Attempt.DeliveryID]
			out[i].EndpointID, out[i].ProjectID = o.endpoint, o.project
		}
	}
	return out, nil
}

// Stats returns the stored buckets q selects, summed over the project's
// endpoints when q names none (index endpoint_stats_project).
func (s *Store) Stats(ctx context.Context, q kinehook.StatsQuery) ([]kinehook.StatsRow, error) {
	sums := make([]string, len(statsCounterCols))
	for i, c := range statsCounterCols {
		sums[i] = "sum(" + c + ")"
		if c == "max_ms" || c == "min_ms" {
			sums[i] = c[:3] + "(" + c + ")"
		}
	}
	query := `SELECT start, ` + strings.Join(sums, ", ") + ` FROM endpoint_stats
		WHERE project_id = ? AND bucket_seconds = ? AND start >= ? AND start < ?`
	args := []any{q.ProjectID, q.BucketSeconds, q.From.Unix(), q.To.Unix()}
	if q.EndpointID != "" {
		query += ` AND endpoint_id = ?`
		args = append(args, q.EndpointID)
	}
	rows, err := s.r.QueryContext(ctx, query+` GROUP BY start ORDER BY start`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: statistics: %w", err)
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
			return nil, fmt.Errorf("sqlite: statistics: %w", err)
		}
		r.Start = time.Unix(start, 0).UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: statistics: %w", err)
	}
	return out, nil
}

// PruneStats removes the rollups older than their resolution keeps them.
func (s *Store) PruneStats(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, r := range kinehook.StatsResolutions {
		res, err := s.w.ExecContext(ctx, `DELETE FROM endpoint_stats WHERE bucket_seconds = ? AND start < ?`, r.Seconds, now.Add(-r.Keep).Unix())
		if err != nil {
			return total, fmt.Errorf("sqlite: prune statistics: %w", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}
