package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
)

// idempotencyWindow is how long an idempotency key maps to its first event.
const idempotencyWindow = 24 * time.Hour

type projKey struct{ project, key string }

// ingestNews is set on the store while a cluster coordinator runs on one of
// its Drivers (Driver.ShareIngests): each ingest then announces its new
// deliveries in its own transaction when other instances are live.
type ingestNews struct {
	self     string        // this instance, not counted among the others
	ttl      time.Duration // a heartbeat within it makes an instance live
	channel  string
	payloads func(ids []string, parts []int) []string
}

// IngestEvents stores events and their deliveries in one transaction. It
// takes two round trips to PostgreSQL for a whole batch: the first claims the
// idempotency keys, allocates the Seq values and reads the projects' enabled
// endpoints; the second inserts the events and deliveries (multi-row INSERT
// ... SELECT FROM unnest) and commits.
//
// While a cluster coordinator shares this store's work (ShareIngests), the
// first trip also asks whether other instances are live and, if so, the
// second announces the new deliveries (NOTIFY, delivered only with the
// commit: results are Announced), so an instance killed right after its
// commit cannot leave them unannounced; a repeated event's result lists its
// open deliveries (OpenDeliveries). What follows the commit, the ordering
// wait, is the coordinator's (Coordinator.AfterCommit), called by the
// engine.
func (s *Store) IngestEvents(ctx context.Context, events []*kinehook.Event) ([]kinehook.IngestResult, error) {
	if len(events) == 0 {
		return []kinehook.IngestResult{}, nil
	}
	in := newIngest(events, s.news.Load())
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, wrap("ingest: begin", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // no-op after Commit
	if err := in.firstTrip(ctx, tx); err != nil {
		return nil, err
	}
	if err := s.repeated(ctx, tx, in); err != nil {
		return nil, err
	}
	if err := s.prepareState(ctx, tx, in); err != nil {
		return nil, err
	}
	in.build()
	if err := in.applyState(); err != nil {
		return nil, err
	}
	if err := in.secondTrip(ctx, tx); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, wrap("ingest: commit", err)
	}
	s.analyzeWhenGrown(len(in.evs))
	return in.results, nil
}

// epFilter is an enabled endpoint as an ingest matches events to it.
type epFilter struct {
	id    string
	match kinehook.Endpoint
}

// ingest is one IngestEvents call in progress.
type ingest struct {
	t   time.Time
	evs []*kinehook.Event
	// dupOf[i] >= 0: event i repeats the idempotency key of event dupOf[i]
	// in the same batch.
	dupOf    []int
	keyed    []int // events with an idempotency key, first of their key
	projects map[string]bool
	news     *ingestNews // nil: not shared with other instances

	// Read in the first round trip.
	byProject map[string][]epFilter
	seqs      []int64
	claimed   map[projKey]bool // keys claimed for the events of this batch
	others    bool             // other instances are live

	results []kinehook.IngestResult
	rows    ingestRows
	state   ingestState
}

// ingestRows are the column arrays of the new events and deliveries.
type ingestRows struct {
	eIDs, ePIDs, eTypes, eKeys []string
	eSrcs                      []string
	eRes, ePay                 [][]byte
	eSeqs                      []int64
	eAts                       []time.Time
	eTPs, eTSs                 []string
	dIDs, dPIDs, dEIDs, dEPs   []string
	dTypes                     []string
	dRes                       [][]byte
	dSeqs                      []int64
	dParts                     []int16
	dAts                       []time.Time
}

// newIngest copies the events with their ids and times filled in, and
// finds repeated idempotency keys.
func newIngest(events []*kinehook.Event, news *ingestNews) *ingest {
	in := &ingest{t: now(), evs: make([]*kinehook.Event, len(events)), dupOf: make([]int, len(events)),
		projects: map[string]bool{}, news: news, results: make([]kinehook.IngestResult, len(events))}
	first := map[projKey]int{}
	for i, src := range events {
		ev := *src
		if ev.ID == "" {
			ev.ID = kinehook.NewID(kinehook.PrefixEvent)
		}
		if ev.CreatedAt.IsZero() {
			ev.CreatedAt = in.t
		}
		ev.CreatedAt = ev.CreatedAt.UTC().Truncate(time.Microsecond)
		in.evs[i] = &ev
		in.dupOf[i] = -1
		in.projects[ev.ProjectID] = true
		if ev.IdempotencyKey == "" {
			continue
		}
		k := projKey{ev.ProjectID, ev.IdempotencyKey}
		if j, ok := first[k]; ok {
			in.dupOf[i] = j
			continue
		}
		first[k] = i
		in.keyed = append(in.keyed, i)
	}
	// Lock idempotency keys in a fixed order so concurrent batches cannot deadlock.
	slices.SortFunc(in.keyed, func(a, b int) int {
		if c := strings.Compare(in.evs[a].ProjectID, in.evs[b].ProjectID); c != 0 {
			return c
		}
		return strings.Compare(in.evs[a].IdempotencyKey, in.evs[b].IdempotencyKey)
	})
	return in
}

// firstTrip reads the endpoints, allocates the Seq values, claims the
// idempotency keys and, when shared, asks whether others are live.
func (in *ingest) firstTrip(ctx context.Context, tx pgx.Tx) error {
	var b pgx.Batch
	// The projects' rows are share-locked until the commit: a project
	// deleted meanwhile (DeleteProject locks its row first) is either
	// deleted after this commit, events included, or found missing here.
	b.Queue(`SELECT id FROM projects WHERE id = ANY($1) FOR KEY SHARE`, mapKeys(in.projects))
	b.Queue(`SELECT id, project_id, event_types FROM endpoints WHERE project_id = ANY($1) AND NOT disabled ORDER BY created_at, id`,
		mapKeys(in.projects))
	b.Queue(`SELECT nextval(pg_get_serial_sequence('events', 'seq')) FROM generate_series(1, $1)`, len(in.evs))
	if len(in.keyed) > 0 {
		n := len(in.keyed)
		pids, keys, eids, ats := make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
		for j, i := range in.keyed {
			pids[j], keys[j], eids[j], ats[j] = in.evs[i].ProjectID, in.evs[i].IdempotencyKey, in.evs[i].ID, in.evs[i].CreatedAt
		}
		// A key is claimed when it is new or its event is older than the
		// window; otherwise the row is left alone (and not returned).
		b.Queue(`INSERT INTO idempotency_keys (project_id, key, event_id, created_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
			ON CONFLICT (project_id, key) DO UPDATE SET event_id = excluded.event_id, created_at = excluded.created_at
			WHERE idempotency_keys.created_at <= excluded.created_at - interval '24 hours'
			RETURNING project_id, key`, pids, keys, eids, ats)
	}
	if in.news != nil {
		b.Queue(`SELECT EXISTS (SELECT 1 FROM instances WHERE id <> $1 AND heartbeat_at > now() - $2 * interval '1 millisecond')`,
			in.news.self, in.news.ttl.Milliseconds())
	}
	br := tx.SendBatch(ctx, &b)
	if err := in.readFirstTrip(br); err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return wrap("ingest: batch", err)
	}
	if len(in.seqs) != len(in.evs) {
		return fmt.Errorf("postgres: ingest: allocated %d seq values for %d events", len(in.seqs), len(in.evs))
	}
	return nil
}

// readFirstTrip reads the first trip's answers in the order queued.
func (in *ingest) readFirstTrip(br pgx.BatchResults) error {
	rows, err := br.Query()
	if err != nil {
		return wrap("ingest: read projects", err)
	}
	live, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return wrap("ingest: read projects", err)
	}
	if len(live) != len(in.projects) {
		for pid := range in.projects {
			if !slices.Contains(live, pid) {
				// Deleted after the request was authenticated: its event
				// would be stored with nothing to reach or remove it.
				return kinehook.Errorf(kinehook.ENOTFOUND, "project %s not found", pid)
			}
		}
	}
	if in.byProject, err = readEndpointFilters(br); err != nil {
		return wrap("ingest: read endpoints", err)
	}
	rows, err = br.Query()
	if err == nil {
		in.seqs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	if err != nil {
		return wrap("ingest: allocate seq", err)
	}
	slices.Sort(in.seqs)
	in.claimed = map[projKey]bool{}
	if len(in.keyed) > 0 {
		if err := readClaimed(br, in.claimed); err != nil {
			return wrap("ingest: idempotency keys", err)
		}
	}
	if in.news != nil {
		if err := br.QueryRow().Scan(&in.others); err != nil {
			return wrap("ingest: live instances", err)
		}
	}
	return nil
}

// readEndpointFilters reads the enabled endpoints by project.
func readEndpointFilters(br pgx.BatchResults) (map[string][]epFilter, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byProject := map[string][]epFilter{}
	for rows.Next() {
		var id, pid string
		var types []string
		if err := rows.Scan(&id, &pid, &types); err != nil {
			return nil, err
		}
		byProject[pid] = append(byProject[pid], epFilter{id: id, match: kinehook.Endpoint{EventTypes: types}})
	}
	return byProject, rows.Err()
}

// readClaimed reads the idempotency keys claimed for this batch.
func readClaimed(br pgx.BatchResults, claimed map[projKey]bool) error {
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k projKey
		if err := rows.Scan(&k.project, &k.key); err != nil {
			return err
		}
		claimed[k] = true
	}
	return rows.Err()
}

// repeated answers the events whose idempotency key was seen before with
// the earlier events, as duplicates; when shared, with their open
// deliveries too.
func (s *Store) repeated(ctx context.Context, tx pgx.Tx, in *ingest) error {
	var stale []int
	for _, i := range in.keyed {
		if !in.claimed[projKey{in.evs[i].ProjectID, in.evs[i].IdempotencyKey}] {
			stale = append(stale, i)
		}
	}
	if len(stale) == 0 {
		return nil
	}
	earlier, err := s.eventsByKey(ctx, tx, in.evs, stale)
	if err != nil {
		return err
	}
	at := map[string]int{} // earlier event id -> result index
	for _, i := range stale {
		e := earlier[projKey{in.evs[i].ProjectID, in.evs[i].IdempotencyKey}]
		if e == nil {
			return fmt.Errorf("postgres: ingest: idempotency key %q of project %s names a missing event", in.evs[i].IdempotencyKey, in.evs[i].ProjectID)
		}
		in.results[i] = kinehook.IngestResult{Event: e, Duplicate: true}
		at[e.ID] = i
	}
	if in.news == nil {
		return nil
	}
	// A retry after a failure: the instance that stored the event may have
	// died before announcing its deliveries. The coordinator wakes those
	// still open.
	rows, err := tx.Query(ctx, `SELECT event_id, id FROM deliveries WHERE event_id = ANY($1) AND status NOT IN ('succeeded', 'failed') ORDER BY seq`,
		customPlan, mapKeys(at))
	if err != nil {
		return wrap("ingest: open deliveries of repeated events", err)
	}
	defer rows.Close()
	for rows.Next() {
		var eid, id string
		if err := rows.Scan(&eid, &id); err != nil {
			return wrap("ingest: open deliveries of repeated events", err)
		}
		r := &in.results[at[eid]]
		r.OpenDeliveries = append(r.OpenDeliveries, id)
	}
	return wrap("ingest: open deliveries of repeated events", rows.Err())
}

// build makes the new events' rows and deliveries and fills in results;
// repeats within the batch share their first event's result.
func (in *ingest) build() {
	for i, ev := range in.evs {
		if in.dupOf[i] >= 0 || in.results[i].Event != nil {
			continue
		}
		ev.Seq = in.seqs[i]
		in.rows.addEvent(ev)
		var ds []*kinehook.Delivery
		for _, ep := range in.byProject[ev.ProjectID] {
			if ep.match.Matches(ev.Type) && ev.Targets(ep.id) {
				d := kinehook.NewDelivery(ev, ep.id, in.t)
				ds = append(ds, d)
				in.rows.addDelivery(d)
			}
		}
		in.results[i] = kinehook.IngestResult{Event: ev, Deliveries: ds}
	}
	for i := range in.evs {
		if j := in.dupOf[i]; j >= 0 {
			in.results[i] = kinehook.IngestResult{Event: in.results[j].Event, Duplicate: true}
		}
	}
}

func (r *ingestRows) addEvent(ev *kinehook.Event) {
	r.eIDs, r.ePIDs, r.eTypes, r.eKeys = append(r.eIDs, ev.ID), append(r.ePIDs, ev.ProjectID), append(r.eTypes, string(ev.Type)), append(r.eKeys, ev.IdempotencyKey)
	r.eSrcs = append(r.eSrcs, ev.SourceID)
	r.eRes, r.ePay, r.eSeqs, r.eAts = append(r.eRes, []byte(ev.ResourceKey)), append(r.ePay, nonNil(ev.Payload)), append(r.eSeqs, ev.Seq), append(r.eAts, ev.CreatedAt)
	if ev.Trace != nil && r.eTPs == nil {
		// The first traced event: the ones before it had none.
		r.eTPs, r.eTSs = make([]string, len(r.eIDs)-1, cap(r.eIDs)), make([]string, len(r.eIDs)-1, cap(r.eIDs))
	}
	if r.eTPs != nil {
		r.eTPs, r.eTSs = append(r.eTPs, ev.Trace.TraceParent()), append(r.eTSs, ev.Trace.TraceState())
	}
}

func (r *ingestRows) addDelivery(d *kinehook.Delivery) {
	r.dIDs, r.dPIDs, r.dEIDs, r.dEPs = append(r.dIDs, d.ID), append(r.dPIDs, d.ProjectID), append(r.dEIDs, d.EventID), append(r.dEPs, d.EndpointID)
	r.dTypes, r.dRes, r.dSeqs = append(r.dTypes, string(d.EventType)), append(r.dRes, []byte(d.ResourceKey)), append(r.dSeqs, d.Seq)
	r.dParts, r.dAts = append(r.dParts, int16(d.Partition)), append(r.dAts, d.CreatedAt)
}

// secondTrip inserts the new events and deliveries and, while other
// instances are live, announces the deliveries in the same transaction:
// the owners hear of them if and only if they are committed, even if this
// process dies right after the commit.
func (in *ingest) secondTrip(ctx context.Context, tx pgx.Tx) error {
	r := &in.rows
	if len(r.eIDs) == 0 {
		return nil
	}
	var b pgx.Batch
	if r.eTPs == nil { // no trace context in the batch: the columns keep their default
		b.Queue(`INSERT INTO events (seq, id, project_id, type, resource_key, payload, idempotency_key, created_at, source_id)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::bytea[], $7::text[], $8::timestamptz[], $9::text[])`,
			r.eSeqs, r.eIDs, r.ePIDs, r.eTypes, r.eRes, r.ePay, r.eKeys, r.eAts, r.eSrcs)
	} else {
		b.Queue(`INSERT INTO events (seq, id, project_id, type, resource_key, payload, idempotency_key, created_at, source_id, traceparent, tracestate)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::bytea[], $7::text[], $8::timestamptz[],
			$9::text[], $10::text[], $11::text[])`,
			r.eSeqs, r.eIDs, r.ePIDs, r.eTypes, r.eRes, r.ePay, r.eKeys, r.eAts, r.eSrcs, r.eTPs, r.eTSs)
	}
	if err := in.queueState(&b); err != nil {
		return err
	}
	if len(r.dIDs) > 0 {
		b.Queue(`INSERT INTO deliveries (id, project_id, event_id, endpoint_id, event_type, resource_key, seq, partition,
			status, attempts, next_attempt_at, last_status_code, last_error, created_at, updated_at)
			SELECT id, pid, eid, ep, typ, res, seq, part, 'pending', 0, $9, 0, '', at, $9
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::bigint[], $8::smallint[], $10::timestamptz[])
				AS u(id, pid, eid, ep, typ, res, seq, part, at)`,
			r.dIDs, r.dPIDs, r.dEIDs, r.dEPs, r.dTypes, r.dRes, r.dSeqs, r.dParts, in.t, r.dAts)
	}
	announce := in.others && len(r.dIDs) > 0
	if announce {
		b.Queue(`SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, in.news.channel, in.news.payloads(r.dIDs, ints(r.dParts)))
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return wrap("ingest: insert events and deliveries", err)
	}
	if announce {
		for i := range in.results {
			if !in.results[i].Duplicate {
				in.results[i].Announced = true
			}
		}
	}
	return nil
}

func ints(ps []int16) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = int(p)
	}
	return out
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// eventsByKey reads the events that the idempotency keys of evs[idx] name.
func (s *Store) eventsByKey(ctx context.Context, tx pgx.Tx, evs []*kinehook.Event, idx []int) (map[projKey]*kinehook.Event, error) {
	pids, keys := make([]string, len(idx)), make([]string, len(idx))
	for n, i := range idx {
		pids[n], keys[n] = evs[i].ProjectID, evs[i].IdempotencyKey
	}
	rows, err := tx.Query(ctx, `SELECT k.key, `+eventColsE+` FROM idempotency_keys k JOIN events e ON e.id = k.event_id
		WHERE k.key = ANY($2) AND (k.project_id, k.key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`, pids, keys)
	if err != nil {
		return nil, wrap("ingest: read earlier events", err)
	}
	defer rows.Close()
	out := map[projKey]*kinehook.Event{}
	for rows.Next() {
		var key string
		e, err := scanEvent(rows, &key)
		if err != nil {
			return nil, wrap("ingest: read earlier events", err)
		}
		out[projKey{e.ProjectID, key}] = e
	}
	return out, wrap("ingest: read earlier events", rows.Err())
}

const eventColsE = `e.seq, e.id, e.project_id, e.type, e.resource_key, e.payload, e.idempotency_key, e.created_at, e.traceparent, e.tracestate, e.source_id`

func scanEvent(row pgx.Row, before ...any) (*kinehook.Event, error) {
	var (
		e      kinehook.Event
		typ    string
		res    []byte
		tp, ts string
	)
	dest := append(before, &e.Seq, &e.ID, &e.ProjectID, &typ, &res, &e.Payload, &e.IdempotencyKey, &e.CreatedAt, &tp, &ts, &e.SourceID)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	e.Type = kinehook.EventType(typ)
	e.ResourceKey = string(res)
	e.Trace = kinehook.NewTraceContext(tp, ts)
	e.CreatedAt = e.CreatedAt.UTC()
	return &e, nil
}

// GetEvent returns an event of the project, or ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, projectID, id string) (*kinehook.Event, error) {
	e, err := scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColsE+` FROM events e WHERE e.id = $1 AND e.project_id = $2`, id, projectID))
	return e, wrap("get event", err)
}

// Page sizes of ListEvents.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
)

// ListEvents pages a project's events newest first. The cursor is the Seq of
// the last event returned, so events accepted while paging never shift pages.
func (s *Store) ListEvents(ctx context.Context, projectID string, f kinehook.EventFilter) ([]*kinehook.Event, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	where := []string{"e.project_id = $1"}
	args := []any{projectID}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Cursor != "" {
		seq, err := strconv.ParseInt(f.Cursor, 10, 64)
		if err != nil || seq <= 0 {
			return nil, "", &kinehook.Error{Code: kinehook.EINVALID, Field: "cursor", Message: "malformed cursor"}
		}
		where = append(where, "e.seq < "+arg(seq))
	}
	if f.SourceID != "" {
		where = append(where, "e.source_id = "+arg(f.SourceID), "e.source_id <> ''")
	}
	if f.Type != "" {
		where = append(where, "e.type = "+arg(string(f.Type)))
	}
	if f.ResourceKey != "" {
		where = append(where, "e.resource_key = "+arg([]byte(f.ResourceKey)))
	}
	if !f.Since.IsZero() {
		where = append(where, "e.created_at >= "+arg(f.Since.UTC()))
	}
	if !f.Until.IsZero() {
		where = append(where, "e.created_at < "+arg(f.Until.UTC()))
	}
	if f.DeliveryStatus != "" {
		where = append(where, "EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = "+arg(string(f.DeliveryStatus))+")")
	}
	q := `SELECT ` + eventColsE + ` FROM events e WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY e.seq DESC LIMIT ` + arg(limit+1)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", wrap("list events", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.Event, error) { return scanEvent(r) })
	if err != nil {
		return nil, "", wrap("list events", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = strconv.FormatInt(out[limit-1].Seq, 10)
	}
	return out, next, nil
}

// EventPayloads returns the payloads of the given events, keyed by id.
func (s *Store) EventPayloads(ctx context.Context, eventIDs []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(eventIDs))
	if len(eventIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, payload FROM events WHERE id = ANY($1)`, customPlan, eventIDs)
	if err != nil {
		return nil, wrap("event payloads", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var p []byte
		if err := rows.Scan(&id, &p); err != nil {
			return nil, wrap("event payloads", err)
		}
		out[id] = p
	}
	return out, wrap("event payloads", rows.Err())
}
