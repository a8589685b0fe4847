package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/statecursor"
)

const stateCols = `project_id, kind, id, status, message, video_id, updated_at, started_at, last_seq, history`

// stateColsS is stateCols of the table aliased s.
const stateColsS = `s.project_id, s.kind, s.id, s.status, s.message, s.video_id, s.updated_at, s.started_at, s.last_seq, s.history`

// scanState reads a state row, its history left undecoded (RawHistory).
func scanState(row interface{ Scan(...any) error }) (*kinehook.ResourceState, error) {
	var st kinehook.ResourceState
	var kind string
	var updated, started int64
	if err := row.Scan(&st.ProjectID, &kind, &st.ID, &st.Status, &st.Message, &st.VideoID, &updated, &started, &st.LastSeq, &st.RawHistory); err != nil {
		return nil, err
	}
	st.Kind = kinehook.StateKind(kind)
	st.UpdatedAt, st.StartedAt = fromMicros(updated), fromMicros(started)
	if st.RawHistory == nil {
		st.RawHistory = []byte("[]")
	}
	return &st, nil
}

// scanStateFull reads a state row with its history decoded.
func scanStateFull(row interface{ Scan(...any) error }) (*kinehook.ResourceState, error) {
	st, err := scanState(row)
	if err != nil {
		return nil, err
	}
	return st, st.DecodeHistory()
}

type stateKey struct {
	project string
	kind    kinehook.StateKind
	id      string
}

// applyState brings the state of every video and stream the batch's new
// events speak of up to date, in acceptance order: one read of all their
// states, and one upsert per resource that changed.
func (s *Store) applyState(ctx context.Context, tx *sql.Tx, b *ingestBatch) error {
	updates := make([]*kinehook.StateUpdate, 0, len(b.fresh))
	var keys [][3]string
	seen := map[stateKey]bool{}
	for _, i := range b.fresh {
		ev := b.results[i].Event
		u := kinehook.StateUpdateOfEvent(ev)
		updates = append(updates, u)
		if u == nil {
			continue
		}
		k := stateKey{ev.ProjectID, u.Kind, u.ID}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, [3]string{k.project, string(k.kind), k.id})
		}
	}
	if len(keys) == 0 {
		return nil
	}
	states, err := s.readStates(ctx, tx, keys)
	if err != nil {
		return err
	}
	before := make(map[stateKey]string, len(states))
	for k, st := range states {
		before[k] = st.Status
	}
	var order []stateKey
	dirty := map[stateKey]bool{}
	for n, i := range b.fresh {
		u := updates[n]
		if u == nil {
			continue
		}
		ev := b.results[i].Event
		k := stateKey{ev.ProjectID, u.Kind, u.ID}
		st, ok := states[k]
		if !ok {
			st = &kinehook.ResourceState{ProjectID: k.project, Kind: k.kind, ID: k.id}
			states[k] = st
		}
		ch, write, err := st.Apply(u, kinehook.StateEntry{At: ev.CreatedAt, EventID: ev.ID, Seq: ev.Seq})
		if err != nil {
			return fmt.Errorf("sqlite: ingest: %w", err)
		}
		b.results[i].State = ch
		if write && !dirty[k] {
			dirty[k] = true
			order = append(order, k)
		}
	}
	deltas := kinehook.CountDeltas{}
	for _, k := range order {
		deltas.Move(k.project, k.kind, before[k], states[k].Status)
	}
	for k, n := range deltas {
		if n == 0 {
			continue
		}
		if _, err := tx.StmtContext(ctx, s.upCount).ExecContext(ctx, k.ProjectID, string(k.Kind), k.Status, n); err != nil {
			return fmt.Errorf("sqlite: ingest: state counts: %w", err)
		}
	}
	args := make([]any, 0, len(order)*stateUpsert.cols)
	for _, k := range order {
		st := states[k]
		h, err := json.Marshal(st.History)
		if err != nil {
			return fmt.Errorf("sqlite: ingest: state history: %w", err)
		}
		args = append(args, st.ProjectID, string(st.Kind), st.ID, st.Status, st.Message,
			st.VideoID, micros(st.UpdatedAt), micros(st.StartedAt), st.LastSeq, string(h))
	}
	if _, err := s.bulk(ctx, tx, &stateUpsert, args, nil); err != nil {
		return fmt.Errorf("sqlite: ingest: write state: %w", err)
	}
	return nil
}

// stateUpsert writes the changed states of an ingest batch, up to
// maxBulkRows per statement: one statement per row cost as much as the
// rows' index writes.
var stateUpsert = bulkInsert{
	head: `INSERT INTO resource_state (` + stateCols + `) VALUES `,
	row:  "(" + placeholders(10) + ")",
	tail: ` ON CONFLICT (project_id, kind, id) DO UPDATE SET status = excluded.status, message = excluded.message,
		video_id = excluded.video_id, updated_at = excluded.updated_at, started_at = excluded.started_at,
		last_seq = excluded.last_seq, history = excluded.history`,
	cols: 10,
}

// readStates reads the stored states of keys ([project, kind, id]) in one
// query (a JSON array of the keys joined to the primary key).
func (s *Store) readStates(ctx context.Context, tx *sql.Tx, keys [][3]string) (map[stateKey]*kinehook.ResourceState, error) {
	arg, err := json.Marshal(keys)
	if err != nil {
		return nil, fmt.Errorf("sqlite: ingest: state keys: %w", err)
	}
	rows, err := tx.StmtContext(ctx, s.selState).QueryContext(ctx, string(arg))
	if err != nil {
		return nil, fmt.Errorf("sqlite: ingest: read states: %w", err)
	}
	defer rows.Close()
	out := make(map[stateKey]*kinehook.ResourceState, len(keys))
	for rows.Next() {
		st, err := scanState(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: ingest: read states: %w", err)
		}
		out[stateKey{st.ProjectID, st.Kind, st.ID}] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: ingest: read states: %w", err)
	}
	return out, nil
}

// GetState returns one video's or stream's state or ErrNotFound.
func (s *Store) GetState(ctx context.Context, projectID string, kind kinehook.StateKind, id string) (*kinehook.ResourceState, error) {
	st, err := scanStateFull(s.r.QueryRowContext(ctx, `SELECT `+stateCols+` FROM resource_state WHERE project_id = ? AND kind = ? AND id = ?`,
		projectID, string(kind), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(string(kind), id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get %s state %s: %w", kind, id, err)
	}
	return st, nil
}

// ListStates pages a project's states, most recently updated first, from
// the (project, kind[, status], updated_at, id) indexes.
func (s *Store) ListStates(ctx context.Context, projectID string, kind kinehook.StateKind, f kinehook.StateFilter) ([]*kinehook.ResourceState, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var where strings.Builder
	where.WriteString(`project_id = ? AND kind = ?`)
	args := []any{projectID, string(kind)}
	if f.Status != "" {
		where.WriteString(` AND status = ?`)
		args = append(args, f.Status)
	}
	if !f.Since.IsZero() {
		where.WriteString(` AND updated_at >= ?`)
		args = append(args, micros(f.Since))
	}
	if f.Cursor != "" {
		at, id, err := statecursor.Decode(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where.WriteString(` AND (updated_at, id) < (?, ?)`)
		args = append(args, micros(at), id)
	}
	args = append(args, limit+1)
	rows, err := s.r.QueryContext(ctx, `SELECT `+stateCols+` FROM resource_state WHERE `+where.String()+
		` ORDER BY updated_at DESC, id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: list %s states: %w", kind, err)
	}
	defer rows.Close()
	var out []*kinehook.ResourceState
	for rows.Next() {
		st, err := scanStateFull(rows)
		if err != nil {
			return nil, "", fmt.Errorf("sqlite: list %s states: %w", kind, err)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: list %s states: %w", kind, err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = statecursor.Encode(out[limit-1].UpdatedAt, out[limit-1].ID)
	}
	return out, next, nil
}

// CountStates counts states by status, of one project or of all, from
// the counts kept at ingest; the oldest UpdatedAt of each comes from the
// status index (one seek per status).
func (s *Store) CountStates(ctx context.Context, projectID string, kind kinehook.StateKind) ([]kinehook.StateCount, error) {
	q := `SELECT c.project_id, c.status, c.count, (SELECT min(r.updated_at) FROM resource_state r
		WHERE r.project_id = c.project_id AND r.kind = c.kind AND r.status = c.status)
		FROM state_counts c WHERE c.kind = ? AND c.count > 0`
	args := []any{string(kind)}
	if projectID != "" {
		q += ` AND c.project_id = ?`
		args = append(args, projectID)
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY c.project_id, c.status`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count %s states: %w", kind, err)
	}
	defer rows.Close()
	out := []kinehook.StateCount{}
	for rows.Next() {
		var c kinehook.StateCount
		var oldest sql.NullInt64
		if err := rows.Scan(&c.ProjectID, &c.Status, &c.Count, &oldest); err != nil {
			return nil, fmt.Errorf("sqlite: count %s states: %w", kind, err)
		}
		c.Oldest = fromMicros(oldest.Int64)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: count %s states: %w", kind, err)
	}
	return out, nil
}
