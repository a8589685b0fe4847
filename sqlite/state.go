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
// events speak of up to date, in acceptance order: one read and one
// upsert per resource per batch.
func (s *Store) applyState(ctx context.Context, tx *sql.Tx, b *ingestBatch) error {
	var states map[stateKey]*kinehook.ResourceState
	var order []stateKey
	dirty := map[stateKey]bool{}
	for _, i := range b.fresh {
		ev := b.results[i].Event
		u := kinehook.StateUpdateOfEvent(ev)
		if u == nil {
			continue
		}
		if states == nil {
			states = map[stateKey]*kinehook.ResourceState{}
		}
		k := stateKey{ev.ProjectID, u.Kind, u.ID}
		st, ok := states[k]
		if !ok {
			var err error
			st, err = scanState(tx.StmtContext(ctx, s.selState).QueryRowContext(ctx, k.project, string(k.kind), k.id))
			if errors.Is(err, sql.ErrNoRows) {
				st, err = &kinehook.ResourceState{ProjectID: k.project, Kind: k.kind, ID: k.id}, nil
			}
			if err != nil {
				return fmt.Errorf("sqlite: ingest: read state: %w", err)
			}
			states[k] = st
			order = append(order, k)
		}
		ch, write, err := st.Apply(u, kinehook.StateEntry{At: ev.CreatedAt, EventID: ev.ID, Seq: ev.Seq})
		if err != nil {
			return fmt.Errorf("sqlite: ingest: %w", err)
		}
		b.results[i].State = ch
		dirty[k] = dirty[k] || write
	}
	for _, k := range order {
		if !dirty[k] {
			continue
		}
		st := states[k]
		h, err := json.Marshal(st.History)
		if err != nil {
			return fmt.Errorf("sqlite: ingest: state history: %w", err)
		}
		if _, err := tx.StmtContext(ctx, s.upState).ExecContext(ctx, st.ProjectID, string(st.Kind), st.ID, st.Status, st.Message,
			st.VideoID, micros(st.UpdatedAt), micros(st.StartedAt), st.LastSeq, string(h)); err != nil {
			return fmt.Errorf("sqlite: ingest: write state: %w", err)
		}
	}
	return nil
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

// CountStates counts states by status, of one project or of all.
func (s *Store) CountStates(ctx context.Context, projectID string, kind kinehook.StateKind) ([]kinehook.StateCount, error) {
	q := `SELECT project_id, status, count(*) FROM resource_state WHERE project_id = ? AND kind = ? GROUP BY project_id, status ORDER BY project_id, status`
	args := []any{projectID, string(kind)}
	if projectID == "" {
		q = `SELECT project_id, status, count(*) FROM resource_state WHERE kind = ? GROUP BY project_id, status ORDER BY project_id, status`
		args = args[1:]
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count %s states: %w", kind, err)
	}
	defer rows.Close()
	out := []kinehook.StateCount{}
	for rows.Next() {
		var c kinehook.StateCount
		if err := rows.Scan(&c.ProjectID, &c.Status, &c.Count); err != nil {
			return nil, fmt.Errorf("sqlite: count %s states: %w", kind, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: count %s states: %w", kind, err)
	}
	return out, nil
}
