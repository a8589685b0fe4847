package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kinehook/kinehook"
)

const adminKeySetting = "admin_key_hash"

// AdminKeyHash returns the stored admin key hash or kinehook.ErrNotFound.
func (s *Store) AdminKeyHash(ctx context.Context) ([]byte, error) {
	var h []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, adminKeySetting).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("setting", adminKeySetting)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: read admin key hash: %w", err)
	}
	return h, nil
}

// SetAdminKeyHash stores (or replaces) the admin key hash.
func (s *Store) SetAdminKeyHash(ctx context.Context, hash []byte) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, adminKeySetting, hash)
	if err != nil {
		return fmt.Errorf("sqlite: store admin key hash: %w", err)
	}
	return nil
}

const projectCols = `id, name, retention_days, operations_url, created_at, portal_origins`

func scanProject(row interface{ Scan(...any) error }) (*kinehook.Project, error) {
	var p kinehook.Project
	var created int64
	var origins string
	if err := row.Scan(&p.ID, &p.Name, &p.RetentionDays, &p.OperationsURL, &created, &origins); err != nil {
		return nil, err
	}
	p.CreatedAt = fromMicros(created)
	var err error
	if p.PortalOrigins, err = decodeStrings(origins); err != nil {
		return nil, fmt.Errorf("project %s portal_origins: %w", p.ID, err)
	}
	return &p, nil
}

// encodeStrings stores a list of strings as a JSON array, "" for none.
func encodeStrings(v []string) string {
	if len(v) == 0 {
		return ""
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

// decodeStrings reads what encodeStrings wrote (nil for "").
func decodeStrings(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	return v, nil
}

// CreateProject stores a project and its first API key (DefaultKeyName,
// scope full) in one transaction. projects.api_key_hash, no longer read,
// gets a random placeholder (see migration 0007).
func (s *Store) CreateProject(ctx context.Context, p *kinehook.Project, apiKeyHash []byte) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: create project %s: %w", p.ID, err)
	}
	defer rollback(tx)
	if _, err := tx.ExecContext(ctx, `INSERT INTO projects (`+projectCols+`, api_key_hash) VALUES (?, ?, ?, ?, ?, ?, randomblob(32))`,
		p.ID, p.Name, p.RetentionDays, p.OperationsURL, micros(p.CreatedAt), encodeStrings(p.PortalOrigins)); err != nil {
		return fmt.Errorf("sqlite: create project %s: %w", p.ID, err)
	}
	k := &kinehook.APIKey{ID: kinehook.NewID(kinehook.PrefixKey), ProjectID: p.ID, Name: kinehook.DefaultKeyName,
		Scope: kinehook.ScopeFull, Hash: apiKeyHash, CreatedAt: p.CreatedAt}
	if err := insertKey(ctx, tx, k); err != nil {
		return fmt.Errorf("sqlite: create project %s: %w", p.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: create project %s: commit: %w", p.ID, err)
	}
	return nil
}

// GetProject returns a project or kinehook.ErrNotFound.
func (s *Store) GetProject(ctx context.Context, id string) (*kinehook.Project, error) {
	p, err := scanProject(s.r.QueryRowContext(ctx, `SELECT `+projectCols+` FROM projects WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("project", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get project %s: %w", id, err)
	}
	return p, nil
}

// ListProjects returns every project, oldest first.
func (s *Store) ListProjects(ctx context.Context) ([]*kinehook.Project, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+projectCols+` FROM projects ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list projects: %w", err)
	}
	defer rows.Close()
	var out []*kinehook.Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list projects: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list projects: %w", err)
	}
	return out, nil
}

// UpdateProject stores a project's name, retention, operations URL and
// portal origins.
func (s *Store) UpdateProject(ctx context.Context, p *kinehook.Project) error {
	res, err := s.w.ExecContext(ctx, `UPDATE projects SET name = ?, retention_days = ?, operations_url = ?, portal_origins = ? WHERE id = ?`,
		p.Name, p.RetentionDays, p.OperationsURL, encodeStrings(p.PortalOrigins), p.ID)
	if err != nil {
		return fmt.Errorf("sqlite: update project %s: %w", p.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("project", p.ID)
	}
	return nil
}

// Sealed blobs: a tag byte then the bytes.
const (
	tagPlain  = 0
	tagSealed = 1
)

func (s *Store) seal(plain []byte) ([]byte, error) { return sealWith(s.box, plain) }

func (s *Store) unseal(b []byte) ([]byte, error) { return unsealWith(s.box, b) }

func sealWith(box kinehook.SecretBox, plain []byte) ([]byte, error) {
	if len(plain) == 0 {
		return []byte{}, nil
	}
	if box == nil {
		return append([]byte{tagPlain}, plain...), nil
	}
	c, err := box.Seal(plain)
	if err != nil {
		return nil, fmt.Errorf("sqlite: seal secret: %w", err)
	}
	return append([]byte{tagSealed}, c...), nil
}

func unsealWith(box kinehook.SecretBox, b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, nil
	}
	switch b[0] {
	case tagPlain:
		return b[1:], nil
	case tagSealed:
		if box == nil {
			return nil, errors.New("sqlite: the store holds encrypted secrets but no encryption key was given")
		}
		p, err := box.Open(b[1:])
		if err != nil {
			return nil, fmt.Errorf("sqlite: open sealed secret (wrong encryption key?): %w", err)
		}
		return p, nil
	default:
		return nil, fmt.Errorf("sqlite: sealed secret has unknown tag %d", b[0])
	}
}

// ResealSecrets is encryption key rotation (it implements the
// kinehook.Resealer contract): it passes every sealed value it holds
// (endpoint secrets, logins, passwords, custom headers, destination credentials; the exact bytes
// SecretBox.Seal returned) to reseal and writes back what reseal returns, in
// one transaction, returning how many values changed. If reseal fails
// nothing is written. Values stored in plain text (written before a key was
// configured) are sealed by Open (sealLegacy), not here.
func (s *Store) ResealSecrets(ctx context.Context, reseal func(sealed []byte) ([]byte, error)) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: reseal: begin: %w", err)
	}
	defer rollback(tx)
	rows, err := tx.QueryContext(ctx, `SELECT id, secrets, login, password, headers_sealed, credentials FROM endpoints`)
	if err != nil {
		return 0, fmt.Errorf("sqlite: reseal: %w", err)
	}
	type stored struct {
		id   string
		cols [5][]byte // secrets, login, password, headers_sealed, credentials
	}
	var all []stored
	for rows.Next() {
		var r stored
		if err := rows.Scan(&r.id, &r.cols[0], &r.cols[1], &r.cols[2], &r.cols[3], &r.cols[4]); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: reseal: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: reseal: %w", err)
	}
	changed := 0
	for _, r := range all {
		dirty := false
		for i, c := range r.cols {
			if len(c) == 0 || c[0] != tagSealed {
				continue
			}
			out, err := reseal(c[1:])
			if err != nil {
				return 0, fmt.Errorf("sqlite: reseal endpoint %s: %w", r.id, err)
			}
			if !bytes.Equal(out, c[1:]) {
				r.cols[i] = append([]byte{tagSealed}, out...)
				dirty = true
				changed++
			}
		}
		if !dirty {
			continue
		}
		for i := range r.cols {
			if r.cols[i] == nil {
				r.cols[i] = []byte{} // an empty blob, not NULL
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET secrets = ?, login = ?, password = ?, headers_sealed = ?, credentials = ? WHERE id = ?`,
			r.cols[0], r.cols[1], r.cols[2], r.cols[3], r.cols[4], r.id); err != nil {
			return 0, fmt.Errorf("sqlite: reseal endpoint %s: %w", r.id, err)
		}
	}
	n, err := resealInbox(ctx, tx, reseal)
	if err != nil {
		return 0, err
	}
	changed += n
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: reseal: commit: %w", err)
	}
	return changed, nil
}

// sealLegacy seals what older rows hold in plain text: custom headers in
// the plain headers column (before schema version 3) move, sealed, to
// headers_sealed; and with a SecretBox, secrets, logins and passwords
// written without one (tag plain) are sealed. Open runs it, since SQL
// migrations have no key; it is idempotent. It returns how many endpoints
// it rewrote.
func (s *Store) sealLegacy(ctx context.Context) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: seal older rows: begin: %w", err)
	}
	defer rollback(tx)
	rows, err := tx.QueryContext(ctx, `SELECT id, headers, secrets, login, password, headers_sealed, credentials FROM endpoints
		WHERE headers <> '{}' OR (? AND (substr(secrets, 1, 1) = x'00' OR substr(login, 1, 1) = x'00'
			OR substr(password, 1, 1) = x'00' OR substr(headers_sealed, 1, 1) = x'00' OR substr(credentials, 1, 1) = x'00'))`, s.box != nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: seal older rows: %w", err)
	}
	type stored struct {
		id      string
		headers string
		cols    [5][]byte // secrets, login, password, headers_sealed, credentials
	}
	var all []stored
	for rows.Next() {
		var r stored
		if err := rows.Scan(&r.id, &r.headers, &r.cols[0], &r.cols[1], &r.cols[2], &r.cols[3], &r.cols[4]); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sqlite: seal older rows: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sqlite: seal older rows: %w", err)
	}
	for _, r := range all {
		var h map[string]string
		if err := json.Unmarshal([]byte(r.headers), &h); err != nil {
			return 0, fmt.Errorf("sqlite: seal older rows: endpoint %s headers: %w", r.id, err)
		}
		if len(h) > 0 && len(r.cols[3]) == 0 {
			b, err := json.Marshal(h)
			if err != nil {
				return 0, fmt.Errorf("sqlite: seal older rows: endpoint %s headers: %w", r.id, err)
			}
			r.cols[3] = append([]byte{tagPlain}, b...) // sealed below
		}
		for i, c := range r.cols {
			if c == nil {
				r.cols[i] = []byte{} // an empty blob, not NULL
			}
			if len(c) == 0 || c[0] != tagPlain || s.box == nil {
				continue
			}
			if r.cols[i], err = s.seal(c[1:]); err != nil {
				return 0, fmt.Errorf("sqlite: seal older rows: endpoint %s: %w", r.id, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE endpoints SET headers = '{}', secrets = ?, login = ?, password = ?, headers_sealed = ?, credentials = ? WHERE id = ?`,
			r.cols[0], r.cols[1], r.cols[2], r.cols[3], r.cols[4], r.id); err != nil {
			return 0, fmt.Errorf("sqlite: seal older rows: endpoint %s: %w", r.id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: seal older rows: commit: %w", err)
	}
	return len(all), nil
}

const endpointCols = `id, project_id, url, description, event_types, headers, disabled, disabled_reason, secrets, scheme,
	name, login, password, headers_sealed, rate_limit, max_in_flight, failing_since, type, config, credentials, created_at, updated_at`

// endpointReadCols are endpointCols and the health columns the engine alone
// writes (UpdateEndpointHealth).
const endpointReadCols = endpointCols + `, breaker_open, breaker_probe_at, consecutive_failures, paused_until`

// endpointRow is an endpoint as stored. headers is the plain column rows
// written before schema version 3 used (see sealLegacy); this code writes
// it "{}" and keeps the headers sealed in headersSealed.
type endpointRow struct {
	e                                       kinehook.Endpoint
	eventTypes, headers                     string
	secrets, login, password, headersSealed []byte
	failingSince, created, updated          int64
	probeAt, pausedUntil                    int64
	typ, config                             string
	credentials                             []byte
}

func (s *Store) scanEndpoint(row interface{ Scan(...any) error }) (*kinehook.Endpoint, error) {
	var r endpointRow
	e := &r.e
	if err := row.Scan(&e.ID, &e.ProjectID, &e.URL, &e.Description, &r.eventTypes, &r.headers, &e.Disabled, &e.DisabledReason,
		&r.secrets, &e.Scheme, &e.Name, &r.login, &r.password, &r.headersSealed, &e.RateLimit, &e.MaxInFlight, &r.failingSince,
		&r.typ, &r.config, &r.credentials, &r.created, &r.updated,
		&e.Breaker.Open, &r.probeAt, &e.Breaker.ConsecutiveFailures, &r.pausedUntil); err != nil {
		return nil, err
	}
	if r.typ != kinehook.EndpointWebhook {
		e.Type = r.typ
	}
	if r.config != "" {
		e.Config = json.RawMessage(r.config)
	}
	if len(r.credentials) > 0 {
		creds, err := s.unseal(r.credentials)
		if err != nil {
			return nil, fmt.Errorf("endpoint %s credentials: %w", e.ID, err)
		}
		if err := json.Unmarshal(creds, &e.Credentials); err != nil {
			return nil, fmt.Errorf("endpoint %s credentials: %w", e.ID, err)
		}
	}
	if err := json.Unmarshal([]byte(r.eventTypes), &e.EventTypes); err != nil {
		return nil, fmt.Errorf("endpoint %s event_types: %w", e.ID, err)
	}
	headers := []byte(r.headers)
	if len(r.headersSealed) > 0 {
		var err error
		if headers, err = s.unseal(r.headersSealed); err != nil {
			return nil, fmt.Errorf("endpoint %s headers: %w", e.ID, err)
		}
	}
	if err := json.Unmarshal(headers, &e.Headers); err != nil {
		return nil, fmt.Errorf("endpoint %s headers: %w", e.ID, err)
	}
	if len(e.Headers) == 0 {
		e.Headers = nil
	}
	secrets, err := s.unseal(r.secrets)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s secrets: %w", e.ID, err)
	}
	if len(secrets) > 0 {
		if err := json.Unmarshal(secrets, &e.Secrets); err != nil {
			return nil, fmt.Errorf("endpoint %s secrets: %w", e.ID, err)
		}
	}
	login, err := s.unseal(r.login)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s login: %w", e.ID, err)
	}
	password, err := s.unseal(r.password)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s password: %w", e.ID, err)
	}
	e.Login, e.Password = string(login), string(password)
	e.FailingSince, e.CreatedAt, e.UpdatedAt = fromMicros(r.failingSince), fromMicros(r.created), fromMicros(r.updated)
	e.Breaker.ProbeAt, e.Breaker.PausedUntil = fromMicros(r.probeAt), fromMicros(r.pausedUntil)
	return e, nil
}

// endpointArgs encodes the stored columns of e after id and project_id.
func (s *Store) endpointArgs(e *kinehook.Endpoint) ([]any, error) {
	types := e.EventTypes
	if types == nil {
		types = []string{}
	}
	et, err := json.Marshal(types)
	if err != nil {
		return nil, fmt.Errorf("sqlite: encode event_types: %w", err)
	}
	var hd []byte
	if len(e.Headers) > 0 {
		if hd, err = json.Marshal(e.Headers); err != nil {
			return nil, fmt.Errorf("sqlite: encode headers: %w", err)
		}
	}
	headers, err := s.seal(hd)
	if err != nil {
		return nil, err
	}
	sj, err := json.Marshal(e.Secrets)
	if err != nil {
		return nil, fmt.Errorf("sqlite: encode secrets: %w", err)
	}
	secrets, err := s.seal(sj)
	if err != nil {
		return nil, err
	}
	login, err := s.seal([]byte(e.Login))
	if err != nil {
		return nil, err
	}
	password, err := s.seal([]byte(e.Password))
	if err != nil {
		return nil, err
	}
	scheme := e.Scheme
	if scheme == "" {
		scheme = kinehook.SchemeV1
	}
	var cj []byte
	if len(e.Credentials) > 0 {
		if cj, err = json.Marshal(e.Credentials); err != nil {
			return nil, fmt.Errorf("sqlite: encode credentials: %w", err)
		}
	}
	creds, err := s.seal(cj)
	if err != nil {
		return nil, err
	}
	return []any{e.URL, e.Description, string(et), "{}", e.Disabled, e.DisabledReason, secrets, scheme,
		e.Name, login, password, headers, e.RateLimit, e.MaxInFlight, micros(e.FailingSince),
		e.TypeOf(), string(e.Config), creds}, nil
}

// CreateEndpoint stores a new endpoint, sealing its secrets.
func (s *Store) CreateEndpoint(ctx context.Context, e *kinehook.Endpoint) error {
	ts := time.Now().UTC().Truncate(time.Microsecond)
	if e.CreatedAt.IsZero() {
		e.CreatedAt = ts
	}
	if e.UpdatedAt.IsZero() {
		e.UpdatedAt = e.CreatedAt
	}
	args, err := s.endpointArgs(e)
	if err != nil {
		return err
	}
	args = append([]any{e.ID, e.ProjectID}, args...)
	args = append(args, micros(e.CreatedAt), micros(e.UpdatedAt))
	if _, err := s.w.ExecContext(ctx, `INSERT INTO endpoints (`+endpointCols+`) VALUES (`+placeholders(len(args))+`)`, args...); err != nil {
		return fmt.Errorf("sqlite: create endpoint %s: %w", e.ID, err)
	}
	return nil
}

// GetEndpoint returns an endpoint of the project or kinehook.ErrNotFound.
func (s *Store) GetEndpoint(ctx context.Context, projectID, id string) (*kinehook.Endpoint, error) {
	e, err := s.scanEndpoint(s.r.QueryRowContext(ctx, `SELECT `+endpointReadCols+` FROM endpoints WHERE id = ? AND project_id = ?`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("endpoint", id)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get endpoint %s: %w", id, err)
	}
	return e, nil
}

func (s *Store) queryEndpoints(ctx context.Context, where string, args ...any) ([]*kinehook.Endpoint, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+endpointReadCols+` FROM endpoints `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list endpoints: %w", err)
	}
	defer rows.Close()
	var out []*kinehook.Endpoint
	for rows.Next() {
		e, err := s.scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list endpoints: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list endpoints: %w", err)
	}
	return out, nil
}

// ListEndpoints returns a project's endpoints, oldest first.
func (s *Store) ListEndpoints(ctx context.Context, projectID string) ([]*kinehook.Endpoint, error) {
	return s.queryEndpoints(ctx, `WHERE project_id = ? ORDER BY created_at, id`, projectID)
}

// ListEndpointsPage pages a project's endpoints oldest first, by
// (created_at, id) after the cursor's pair (index endpoints_project_page).
func (s *Store) ListEndpointsPage(ctx context.Context, projectID, cursor string, limit int) ([]*kinehook.Endpoint, string, error) {
	limit = min(max(limit, 1), MaxListLimit)
	where, args := `WHERE project_id = ?`, []any{projectID}
	if cursor != "" {
		t, id, err := kinehook.DecodeEndpointCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		where += ` AND (created_at, id) > (?, ?)`
		args = append(args, micros(t), id)
	}
	out, err := s.queryEndpoints(ctx, where+` ORDER BY created_at, id LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", err
	}
	out, next := kinehook.EndpointPage(out, limit)
	return out, next, nil
}

// AllEndpoints returns every endpoint (the engine's cache).
func (s *Store) AllEndpoints(ctx context.Context) ([]*kinehook.Endpoint, error) {
	return s.queryEndpoints(ctx, `ORDER BY created_at, id`)
}

// UpdateEndpoint stores every field of an existing endpoint of its project.
func (s *Store) UpdateEndpoint(ctx context.Context, e *kinehook.Endpoint) error {
	return s.updateEndpoint(ctx, e, nil)
}

// UpdateEndpointIfUnchanged is UpdateEndpoint while the stored UpdatedAt is
// still prev (see kinehook.Store).
func (s *Store) UpdateEndpointIfUnchanged(ctx context.Context, e *kinehook.Endpoint, prev time.Time) error {
	return s.updateEndpoint(ctx, e, &prev)
}

func (s *Store) updateEndpoint(ctx context.Context, e *kinehook.Endpoint, prev *time.Time) error {
	if e.UpdatedAt.IsZero() {
		e.UpdatedAt = time.Now().UTC().Truncate(time.Microsecond)
	}
	args, err := s.endpointArgs(e)
	if err != nil {
		return err
	}
	args = append(args, micros(e.UpdatedAt), e.Disabled, e.Disabled, e.Disabled, e.Disabled, e.ID, e.ProjectID)
	cond := ``
	if prev != nil {
		cond = ` AND updated_at = ?`
		args = append(args, micros(*prev))
	}
	res, err := s.w.ExecContext(ctx, `UPDATE endpoints SET url = ?, description = ?, event_types = ?, headers = ?, disabled = ?,
		disabled_reason = ?, secrets = ?, scheme = ?, name = ?, login = ?, password = ?, headers_sealed = ?, rate_limit = ?, max_in_flight = ?,
		failing_since = ?, type = ?, config = ?, credentials = ?, updated_at = ?, `+resetBreakerOnEnable+` WHERE id = ? AND project_id = ?`+cond, args...)
	if err != nil {
		return fmt.Errorf("sqlite: update endpoint %s: %w", e.ID, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	if prev != nil {
		var one int
		err := s.w.QueryRowContext(ctx, `SELECT 1 FROM endpoints WHERE id = ? AND project_id = ?`, e.ID, e.ProjectID).Scan(&one)
		if err == nil {
			return kinehook.Errorf(kinehook.ECONFLICT, "endpoint %s was changed since it was read", e.ID)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: update endpoint %s: %w", e.ID, err)
		}
	}
	return notFound("endpoint", e.ID)
}

// UpdateEndpointHealth applies one health change with a single UPDATE of the
// fields it concerns (see kinehook.Store).
func (s *Store) UpdateEndpointHealth(ctx context.Context, projectID, id string, u kinehook.HealthUpdate) (bool, error) {
	at := micros(u.At)
	if u.At.IsZero() {
		at = time.Now().UnixMicro()
	}
	var q string
	var args []any
	switch u.Change {
	case kinehook.HealthFailing:
		if u.FailingSince.IsZero() {
			return false, fmt.Errorf("sqlite: endpoint %s health: failing without a time", id)
		}
		q = `UPDATE endpoints SET failing_since = ?, updated_at = ? WHERE id = ? AND project_id = ? AND failing_since = 0`
		args = []any{micros(u.FailingSince), at, id, projectID}
	case kinehook.HealthRecovered:
		q = `UPDATE endpoints SET failing_since = 0, updated_at = ? WHERE id = ? AND project_id = ? AND failing_since <> 0`
		args = []any{at, id, projectID}
	case kinehook.HealthDisabled:
		q = `UPDATE endpoints SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE id = ? AND project_id = ? AND disabled = 0`
		args = []any{u.Reason, at, id, projectID}
	case kinehook.HealthBreaker:
		b := &u.Breaker
		q = `UPDATE endpoints SET breaker_open = ?1, breaker_probe_at = ?2, consecutive_failures = ?3, paused_until = ?4
			WHERE id = ?5 AND project_id = ?6
			AND (breaker_open <> ?1 OR breaker_probe_at <> ?2 OR consecutive_failures <> ?3 OR paused_until <> ?4)`
		args = []any{b.Open, micros(b.ProbeAt), b.ConsecutiveFailures, micros(b.PausedUntil), id, projectID}
	default:
		return false, fmt.Errorf("sqlite: endpoint %s health: unknown change %d", id, u.Change)
	}
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("sqlite: endpoint %s health: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// resetBreakerOnEnable clears the stored breaker state when an update
// enables a disabled endpoint (each of its four arguments: the new disabled
// flag; the right-hand sides read the row as it was):
// re-enabled, it starts healthy, as the engine's state does. Otherwise the
// columns stay as the engine wrote them.
const resetBreakerOnEnable = `breaker_open = CASE WHEN disabled <> 0 AND ? = 0 THEN 0 ELSE breaker_open END,
	breaker_probe_at = CASE WHEN disabled <> 0 AND ? = 0 THEN 0 ELSE breaker_probe_at END,
	consecutive_failures = CASE WHEN disabled <> 0 AND ? = 0 THEN 0 ELSE consecutive_failures END,
	paused_until = CASE WHEN disabled <> 0 AND ? = 0 THEN 0 ELSE paused_until END`

// DeleteEndpoint removes an endpoint and, in the same commit, fails its open
// deliveries (the history of the others stays).
func (s *Store) DeleteEndpoint(ctx context.Context, projectID, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: delete endpoint %s: %w", id, err)
	}
	defer rollback(tx)
	res, err := tx.ExecContext(ctx, `DELETE FROM endpoints WHERE id = ? AND project_id = ?`, id, projectID)
	if err != nil {
		return fmt.Errorf("sqlite: delete endpoint %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("endpoint", id)
	}
	if _, err := tx.ExecContext(ctx, failEndpointDeliveries, time.Now().UnixMicro(), id); err != nil {
		return fmt.Errorf("sqlite: delete endpoint %s: fail its deliveries: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: delete endpoint %s: commit: %w", id, err)
	}
	return nil
}
