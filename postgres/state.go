package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/statecursor"
)

type stateKey struct {
	project string
	kind    kinehook.StateKind
	id      string
}

type inboxKey struct{ source, resource string }

type inboxLatest struct {
	hash    []byte
	eventID string
	at      time.Time
}

// ingestState is the inbox and state part of one IngestEvents call.
type ingestState struct {
	updates []*kinehook.StateUpdate // per event; nil: says nothing
	states  map[stateKey]*kinehook.ResourceState
	order   []stateKey
	written map[stateKey]bool
	// before is each state's status as read, before this batch.
	before map[stateKey]string
	stored map[inboxKey]inboxLatest
	latest map[inboxKey]int // the newest fresh event of each (source, resource) of the batch
}

// lockID is the advisory lock of one state or inbox key: instances that
// ingest events of one resource at the same time take turns, so the
// read-modify-write of its state (and the retry check) stays whole.
func lockID(parts ...string) int64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return int64(h.Sum64())
}

// prepareState locks and reads what the batch's events need: the latest
// body of each (source, resource) and the state of each video and stream.
// It answers the retries of an inbox source as duplicates. One round trip
// (two when a retry must be read back), none for a batch of events that
// speak of no state and come from no source.
func (s *Store) prepareState(ctx context.Context, tx pgx.Tx, in *ingest) error {
	st := &in.state
	st.updates = make([]*kinehook.StateUpdate, len(in.evs))
	var locks []int64
	var sKeys []stateKey
	var iKeys []inboxKey
	seenS, seenI := map[stateKey]bool{}, map[inboxKey]bool{}
	for i, ev := range in.evs {
		if in.dupOf[i] >= 0 || in.results[i].Event != nil {
			continue
		}
		if u := kinehook.StateUpdateOfEvent(ev); u != nil {
			u = &kinehook.StateUpdate{Kind: u.Kind, ID: cleanText(u.ID), Status: cleanText(u.Status), Message: cleanText(u.Message), VideoID: cleanText(u.VideoID)}
			st.updates[i] = u
			k := stateKey{ev.ProjectID, u.Kind, u.ID}
			if !seenS[k] {
				seenS[k] = true
				sKeys = append(sKeys, k)
				locks = append(locks, lockID("state", k.project, string(k.kind), k.id))
			}
		}
		if ev.SourceID != "" && len(ev.BodyHash) > 0 {
			k := inboxKey{ev.SourceID, ev.ResourceKey}
			if !seenI[k] {
				seenI[k] = true
				iKeys = append(iKeys, k)
				locks = append(locks, lockID("inbox", k.source, k.resource))
			}
		}
	}
	if len(locks) == 0 {
		return nil
	}
	slices.Sort(locks)
	locks = slices.Compact(locks)
	var b pgx.Batch
	b.Queue(`SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::bigint[]) AS k`, locks)
	// The reads below take lists of keys: planned for them each time (see
	// customPlan), not by a generic plan cached while the tables were small,
	// which then scanned resource_state on every commit as it grew. Only
	// they: the inserts after them keep their cached plans (cachedPlans).
	b.Queue(customPlans)
	if len(iKeys) > 0 {
		srcs, res := make([]string, len(iKeys)), make([][]byte, len(iKeys))
		for j, k := range iKeys {
			srcs[j], res[j] = k.source, []byte(k.resource)
		}
		b.Queue(`SELECT source_id, resource_key, body_hash, event_id, at FROM inbox_latest
			WHERE (source_id, resource_key) IN (SELECT * FROM unnest($1::text[], $2::bytea[]))`, srcs, res)
	}
	if len(sKeys) > 0 {
		pids, kinds, ids := make([]string, len(sKeys)), make([]string, len(sKeys)), make([]string, len(sKeys))
		for j, k := range sKeys {
			pids[j], kinds[j], ids[j] = k.project, string(k.kind), k.id
		}
		b.Queue(`SELECT `+stateCols+` FROM resource_state
			WHERE (project_id, kind, id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`, pids, kinds, ids)
	}
	b.Queue(cachedPlans)
	br := tx.SendBatch(ctx, &b)
	err := readPrepared(br, st, len(iKeys) > 0, len(sKeys) > 0)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wrap("ingest: state and inbox", err)
	}
	return s.inboxRetries(ctx, tx, in)
}

func readPrepared(br pgx.BatchResults, st *ingestState, inbox, state bool) error {
	for range 2 { // the locks, then customPlans
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	st.stored = map[inboxKey]inboxLatest{}
	if inbox {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var k inboxKey
			var res []byte
			var l inboxLatest
			if err := rows.Scan(&k.source, &res, &l.hash, &l.eventID, &l.at); err != nil {
				rows.Close()
				return err
			}
			k.resource = string(res)
			st.stored[k] = l
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	st.states = map[stateKey]*kinehook.ResourceState{}
	if state {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			rs, err := scanState(rows)
			if err != nil {
				rows.Close()
				return err
			}
			st.states[stateKey{rs.ProjectID, rs.Kind, rs.ID}] = rs
			if st.before == nil {
				st.before = map[stateKey]string{}
			}
			st.before[stateKey{rs.ProjectID, rs.Kind, rs.ID}] = rs.Status
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	_, err := br.Exec() // cachedPlans
	return err
}

// inboxRetries answers an event whose body equals the latest one accepted
// from its source for its resource, within kinehook.InboxRetryWindow, as
// a duplicate of that event.
func (s *Store) inboxRetries(ctx context.Context, tx pgx.Tx, in *ingest) error {
	st := &in.state
	st.latest = map[inboxKey]int{}
	for i, ev := range in.evs {
		if in.dupOf[i] >= 0 || in.results[i].Event != nil || ev.SourceID == "" || len(ev.BodyHash) == 0 {
			continue
		}
		k := inboxKey{ev.SourceID, ev.ResourceKey}
		if j, ok := st.latest[k]; ok {
			prev := in.evs[j]
			if bytes.Equal(prev.BodyHash, ev.BodyHash) && ev.CreatedAt.Sub(prev.CreatedAt) < kinehook.InboxRetryWindow {
				in.dupOf[i] = j
				continue
			}
		} else if l, ok := st.stored[k]; ok && bytes.Equal(l.hash, ev.BodyHash) && ev.CreatedAt.Sub(l.at) < kinehook.InboxRetryWindow {
			first, err := scanEvent(tx.QueryRow(ctx, `SELECT `+eventColsE+` FROM events e WHERE e.id = $1`, l.eventID))
			if err == nil {
				in.results[i] = kinehook.IngestResult{Event: first, Duplicate: true}
				continue
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return wrap("ingest: inbox retry", err)
			}
		}
		st.latest[k] = i
	}
	return nil
}

// applyState applies the batch's new events (build has given them their
// Seq) to the states read by prepareState, in acceptance order.
func (in *ingest) applyState() error {
	st := &in.state
	if st.updates == nil {
		return nil
	}
	for i, ev := range in.evs {
		u := st.updates[i]
		if u == nil || in.dupOf[i] >= 0 || in.results[i].Duplicate || in.results[i].Event != ev {
			continue
		}
		k := stateKey{ev.ProjectID, u.Kind, u.ID}
		rs, ok := st.states[k]
		if !ok {
			rs = &kinehook.ResourceState{ProjectID: k.project, Kind: k.kind, ID: k.id}
			st.states[k] = rs
		}
		ch, write, err := rs.Apply(u, kinehook.StateEntry{At: ev.CreatedAt, EventID: ev.ID, Seq: ev.Seq})
		if err != nil {
			return fmt.Errorf("postgres: ingest: %w", err)
		}
		in.results[i].State = ch
		if write && !st.written[k] {
			if st.written == nil {
				st.written = map[stateKey]bool{}
			}
			st.written[k] = true
			st.order = append(st.order, k)
		}
	}
	return nil
}

// queueState queues the upserts of the states and inbox latest bodies the
// batch changed (in the second round trip).
func (in *ingest) queueState(b *pgx.Batch) error {
	st := &in.state
	if len(st.order) > 0 {
		n := len(st.order)
		pids, kinds, ids, stats, msgs, vids := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		upd, started, hist, seqs := make([]time.Time, n), make([]*time.Time, n), make([][]byte, n), make([]int64, n)
		for j, k := range st.order {
			rs := st.states[k]
			h, err := json.Marshal(rs.History)
			if err != nil {
				return fmt.Errorf("postgres: ingest: state history: %w", err)
			}
			pids[j], kinds[j], ids[j], stats[j], msgs[j], vids[j] = rs.ProjectID, string(rs.Kind), rs.ID, rs.Status, rs.Message, rs.VideoID
			upd[j], hist[j], seqs[j] = rs.UpdatedAt, h, rs.LastSeq
			if !rs.StartedAt.IsZero() {
				t := rs.StartedAt
				started[j] = &t
			}
		}
		b.Queue(`INSERT INTO resource_state (`+stateCols+`)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::timestamptz[], $9::bigint[], $10::jsonb[])
			ON CONFLICT (project_id, kind, id) DO UPDATE SET status = excluded.status, message = excluded.message,
			video_id = excluded.video_id, updated_at = excluded.updated_at, started_at = excluded.started_at,
			last_seq = excluded.last_seq, history = excluded.history`,
			pids, kinds, ids, stats, msgs, vids, upd, started, seqs, hist)
		deltas := kinehook.CountDeltas{}
		for _, k := range st.order {
			deltas.Move(k.project, k.kind, st.before[k], st.states[k].Status)
		}
		var cp, ck, cs []string
		var cn []int64
		for k, n := range deltas {
			if n != 0 {
				cp, ck, cs, cn = append(cp, k.ProjectID), append(ck, string(k.Kind)), append(cs, k.Status), append(cn, n)
			}
		}
		if len(cp) > 0 {
			b.Queue(`INSERT INTO state_counts (project_id, kind, status, count)
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) ORDER BY 1, 2, 3
				ON CONFLICT (project_id, kind, status) DO UPDATE SET count = state_counts.count + excluded.count`, cp, ck, cs, cn)
		}
	}
	if len(st.latest) > 0 {
		var srcs, eids []string
		var res, hashes [][]byte
		var ats []time.Time
		for k, i := range st.latest {
			ev := in.evs[i]
			if in.results[i].Event != ev {
				continue
			}
			srcs, res, hashes, eids, ats = append(srcs, k.source), append(res, []byte(k.resource)), append(hashes, ev.BodyHash), append(eids, ev.ID), append(ats, ev.CreatedAt)
		}
		if len(srcs) > 0 {
			b.Queue(`INSERT INTO inbox_latest (source_id, resource_key, body_hash, event_id, at)
				SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::text[], $5::timestamptz[])
				ON CONFLICT (source_id, resource_key) DO UPDATE SET body_hash = excluded.body_hash, event_id = excluded.event_id, at = excluded.at`,
				srcs, res, hashes, eids, ats)
		}
	}
	return nil
}

const stateCols = `project_id, kind, id, status, message, video_id, updated_at, started_at, last_seq, history`

// scanState reads a state row, its history left undecoded (RawHistory).
func scanState(row pgx.Row) (*kinehook.ResourceState, error) {
	var rs kinehook.ResourceState
	var kind string
	var started *time.Time
	if err := row.Scan(&rs.ProjectID, &kind, &rs.ID, &rs.Status, &rs.Message, &rs.VideoID, &rs.UpdatedAt, &started, &rs.LastSeq, &rs.RawHistory); err != nil {
		return nil, err
	}
	rs.Kind = kinehook.StateKind(kind)
	rs.UpdatedAt = rs.UpdatedAt.UTC()
	if started != nil {
		rs.StartedAt = started.UTC()
	}
	if rs.RawHistory == nil {
		rs.RawHistory = []byte("[]")
	}
	return &rs, nil
}

// scanStateFull reads a state row with its history decoded.
func scanStateFull(row pgx.Row) (*kinehook.ResourceState, error) {
	rs, err := scanState(row)
	if err != nil {
		return nil, err
	}
	return rs, rs.DecodeHistory()
}

// GetState returns one video's or stream's state or ErrNotFound.
func (s *Store) GetState(ctx context.Context, projectID string, kind kinehook.StateKind, id string) (*kinehook.ResourceState, error) {
	rs, err := scanStateFull(s.pool.QueryRow(ctx, `SELECT `+stateCols+` FROM resource_state WHERE project_id = $1 AND kind = $2 AND id = $3`,
		projectID, string(kind), cleanText(id)))
	return rs, wrap("get "+string(kind)+" state", err)
}

// ListStates pages a project's states, most recently updated first, from
// the (project, kind[, status], updated_at, id) indexes.
func (s *Store) ListStates(ctx context.Context, projectID string, kind kinehook.StateKind, f kinehook.StateFilter) ([]*kinehook.ResourceState, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	where := []string{"project_id = $1", "kind = $2"}
	args := []any{projectID, string(kind)}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(cleanText(f.Status)))
	}
	if !f.Since.IsZero() {
		where = append(where, "updated_at >= "+arg(f.Since.UTC()))
	}
	if f.Cursor != "" {
		at, id, err := statecursor.Decode(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(updated_at, id) < ("+arg(at)+", "+arg(cleanText(id))+")")
	}
	rows, err := s.pool.Query(ctx, `SELECT `+stateCols+` FROM resource_state WHERE `+strings.Join(where, " AND ")+
		` ORDER BY updated_at DESC, id DESC LIMIT `+arg(limit+1), args...)
	if err != nil {
		return nil, "", wrap("list states", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.ResourceState, error) { return scanStateFull(r) })
	if err != nil {
		return nil, "", wrap("list states", err)
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
	rows, err := s.pool.Query(ctx, `SELECT c.project_id, c.status, c.count, (SELECT min(r.updated_at) FROM resource_state r
		WHERE r.project_id = c.project_id AND r.kind = c.kind AND r.status = c.status)
		FROM state_counts c WHERE c.kind = $1 AND c.count > 0 AND ($2 = '' OR c.project_id = $2)
		ORDER BY c.project_id, c.status`, string(kind), projectID)
	if err != nil {
		return nil, wrap("count states", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kinehook.StateCount, error) {
		var c kinehook.StateCount
		var oldest *time.Time
		err := r.Scan(&c.ProjectID, &c.Status, &c.Count, &oldest)
		if oldest != nil {
			c.Oldest = oldest.UTC()
		}
		return c, err
	})
	if out == nil {
		out = []kinehook.StateCount{}
	}
	return out, wrap("count states", err)
}
