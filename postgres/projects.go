package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/kinehook/kinehook"
)

// CreateProject stores a project and its first API key (DefaultKeyName,
// scope full) in one transaction.
func (s *Store) CreateProject(ctx context.Context, p *kinehook.Project, apiKeyHash []byte) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now()
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO projects (id, name, retention_days, operations_url, created_at, portal_origins)
			VALUES ($1, $2, $3, $4, $5, $6)`, p.ID, p.Name, p.RetentionDays, p.OperationsURL, p.CreatedAt.UTC(), textArray(p.PortalOrigins))
		if isUniqueViolation(err) {
			return &kinehook.Error{Code: kinehook.ECONFLICT, Message: "a project with this id exists"}
		}
		if err != nil {
			return wrap("create project", err)
		}
		k := &kinehook.APIKey{ID: kinehook.NewID(kinehook.PrefixKey), ProjectID: p.ID, Name: kinehook.DefaultKeyName,
			Scope: kinehook.ScopeFull, Hash: apiKeyHash, CreatedAt: p.CreatedAt}
		return insertKey(ctx, tx, k)
	})
}

const projectCols = `id, name, retention_days, operations_url, created_at, portal_origins`

func scanProject(row pgx.Row) (*kinehook.Project, error) {
	var p kinehook.Project
	if err := row.Scan(&p.ID, &p.Name, &p.RetentionDays, &p.OperationsURL, &p.CreatedAt, &p.PortalOrigins); err != nil {
		return nil, err
	}
	p.CreatedAt = p.CreatedAt.UTC()
	if len(p.PortalOrigins) == 0 {
		p.PortalOrigins = nil
	}
	return &p, nil
}

// textArray is v for a NOT NULL text[] column: empty, never NULL.
func textArray(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// GetProject returns the project with id, or ErrNotFound.
func (s *Store) GetProject(ctx context.Context, id string) (*kinehook.Project, error) {
	p, err := scanProject(s.pool.QueryRow(ctx, `SELECT `+projectCols+` FROM projects WHERE id = $1`, id))
	return p, wrap("get project", err)
}

// ListProjects returns every project, oldest first.
func (s *Store) ListProjects(ctx context.Context) ([]*kinehook.Project, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+projectCols+` FROM projects ORDER BY created_at, id`)
	if err != nil {
		return nil, wrap("list projects", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.Project, error) { return scanProject(r) })
	return out, wrap("list projects", err)
}

// UpdateProject saves a project's name and settings (not its key or id).
func (s *Store) UpdateProject(ctx context.Context, p *kinehook.Project) error {
	tag, err := s.pool.Exec(ctx, `UPDATE projects SET name = $2, retention_days = $3, operations_url = $4, portal_origins = $5 WHERE id = $1`,
		p.ID, p.Name, p.RetentionDays, p.OperationsURL, textArray(p.PortalOrigins))
	if err != nil {
		return wrap("update project", err)
	}
	if tag.RowsAffected() == 0 {
		return wrap("update project", pgx.ErrNoRows)
	}
	return nil
}

// endpointRow is an endpoint in its stored form. login and headers are
// the plain columns older binaries wrote (see sealLegacy); this one writes
// them empty and keeps both sealed in loginSealed and headersSealed.
type endpointRow struct {
	eventTypes    []string
	headers       []byte
	secrets       []byte
	login         string
	loginSealed   []byte
	password      []byte
	headersSealed []byte
	typ           string
	config        string // normalised JSON; "" for a webhook
	credentials   []byte // sealed JSON object; nil for none
}

func (s *Store) encodeEndpoint(e *kinehook.Endpoint) (*endpointRow, error) {
	r := &endpointRow{eventTypes: e.EventTypes}
	if r.eventTypes == nil {
		r.eventTypes = []string{}
	}
	r.headers = []byte("{}")
	var err error
	if len(e.Headers) > 0 {
		plain, err := jsonOrNil(e.Headers)
		if err != nil {
			return nil, err
		}
		if r.headersSealed, err = s.seal(plain); err != nil {
			return nil, err
		}
	}
	if e.Login != "" {
		if r.loginSealed, err = s.seal([]byte(e.Login)); err != nil {
			return nil, err
		}
	}
	secrets := e.Secrets
	if secrets == nil {
		secrets = []kinehook.EndpointSecret{}
	}
	plain, err := jsonOrNil(secrets)
	if err != nil {
		return nil, err
	}
	if r.secrets, err = s.seal(plain); err != nil {
		return nil, err
	}
	if e.Password != "" {
		if r.password, err = s.seal([]byte(e.Password)); err != nil {
			return nil, err
		}
	}
	r.typ = e.TypeOf()
	r.config = string(e.Config)
	if len(e.Credentials) > 0 {
		plain, err := jsonOrNil(e.Credentials)
		if err != nil {
			return nil, err
		}
		if r.credentials, err = s.seal(plain); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// CreateEndpoint stores an endpoint; its secrets, login, password and
// custom header values are sealed.
func (s *Store) CreateEndpoint(ctx context.Context, e *kinehook.Endpoint) error {
	t := now()
	if e.CreatedAt.IsZero() {
		e.CreatedAt = t
	}
	if e.UpdatedAt.IsZero() {
		e.UpdatedAt = e.CreatedAt
	}
	r, err := s.encodeEndpoint(e)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO endpoints (id, project_id, url, description, event_types, headers, disabled,
		disabled_reason, secrets, scheme, name, login, password, rate_limit, max_in_flight, failing_since, created_at, updated_at,
		login_sealed, headers_sealed, type, config, credentials)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`,
		e.ID, e.ProjectID, e.URL, e.Description, r.eventTypes, r.headers, e.Disabled, e.DisabledReason, r.secrets,
		e.Scheme, e.Name, r.login, r.password, e.RateLimit, e.MaxInFlight, nullTime(e.FailingSince),
		e.CreatedAt.UTC(), e.UpdatedAt.UTC(), r.loginSealed, r.headersSealed, r.typ, r.config, r.credentials)
	if isUniqueViolation(err) {
		return &kinehook.Error{Code: kinehook.ECONFLICT, Message: "an endpoint with this id exists"}
	}
	if err != nil && isForeignKeyViolation(err) {
		return fmt.Errorf("postgres: create endpoint: project %s: %w", e.ProjectID, kinehook.ErrNotFound)
	}
	return wrap("create endpoint", err)
}

const endpointCols = `id, project_id, url, description, event_types, headers, disabled, disabled_reason, secrets, scheme,
	name, login, password, rate_limit, max_in_flight, failing_since, created_at, updated_at, login_sealed, headers_sealed,
	type, config, credentials, breaker_open, breaker_probe_at, consecutive_failures, paused_until`

func (s *Store) scanEndpoint(row pgx.Row) (*kinehook.Endpoint, error) {
	var (
		e            kinehook.Endpoint
		r            endpointRow
		failingSince *time.Time
		probeAt      *time.Time
		pausedUntil  *time.Time
	)
	if err := row.Scan(&e.ID, &e.ProjectID, &e.URL, &e.Description, &r.eventTypes, &r.headers, &e.Disabled,
		&e.DisabledReason, &r.secrets, &e.Scheme, &e.Name, &r.login, &r.password, &e.RateLimit, &e.MaxInFlight,
		&failingSince, &e.CreatedAt, &e.UpdatedAt, &r.loginSealed, &r.headersSealed, &r.typ, &r.config, &r.credentials,
		&e.Breaker.Open, &probeAt, &e.Breaker.ConsecutiveFailures, &pausedUntil); err != nil {
		return nil, err
	}
	if err := s.decodeDestination(&e, &r); err != nil {
		return nil, err
	}
	e.EventTypes = r.eventTypes
	if len(e.EventTypes) == 0 {
		e.EventTypes = nil
	}
	// The plain columns hold values only in a row an older binary wrote
	// since this store was opened (sealLegacy seals the others): this
	// binary always empties them, so such a value is the newer one.
	e.Login = r.login
	if r.login == "" && r.loginSealed != nil {
		login, err := s.open(r.loginSealed)
		if err != nil {
			return nil, fmt.Errorf("endpoint %s login: %w", e.ID, err)
		}
		e.Login = string(login)
	}
	headers := r.headers
	if bytes.Equal(bytes.TrimSpace(r.headers), []byte("{}")) && r.headersSealed != nil {
		var err error
		if headers, err = s.open(r.headersSealed); err != nil {
			return nil, fmt.Errorf("endpoint %s headers: %w", e.ID, err)
		}
	}
	if err := json.Unmarshal(headers, &e.Headers); err != nil {
		return nil, fmt.Errorf("endpoint %s headers: %w", e.ID, err)
	}
	if len(e.Headers) == 0 {
		e.Headers = nil
	}
	plain, err := s.open(r.secrets)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s secrets: %w", e.ID, err)
	}
	if err := json.Unmarshal(plain, &e.Secrets); err != nil {
		return nil, fmt.Errorf("endpoint %s secrets: %w", e.ID, err)
	}
	for i := range e.Secrets {
		if !e.Secrets[i].ExpiresAt.IsZero() {
			e.Secrets[i].ExpiresAt = e.Secrets[i].ExpiresAt.UTC()
		}
	}
	if r.password != nil {
		pw, err := s.open(r.password)
		if err != nil {
			return nil, fmt.Errorf("endpoint %s password: %w", e.ID, err)
		}
		e.Password = string(pw)
	}
	e.FailingSince = fromNull(failingSince)
	e.Breaker.ProbeAt, e.Breaker.PausedUntil = fromNull(probeAt), fromNull(pausedUntil)
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	return &e, nil
}

// decodeDestination fills e's type, config and credentials from r.
func (s *Store) decodeDestination(e *kinehook.Endpoint, r *endpointRow) error {
	if r.typ != kinehook.EndpointWebhook {
		e.Type = r.typ
	}
	if r.config != "" {
		e.Config = json.RawMessage(r.config)
	}
	if r.credentials != nil {
		plain, err := s.open(r.credentials)
		if err != nil {
			return fmt.Errorf("endpoint %s credentials: %w", e.ID, err)
		}
		if err := json.Unmarshal(plain, &e.Credentials); err != nil {
			return fmt.Errorf("endpoint %s credentials: %w", e.ID, err)
		}
	}
	return nil
}

func (s *Store) queryEndpoints(ctx context.Context, what, sql string, args ...any) ([]*kinehook.Endpoint, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap(what, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*kinehook.Endpoint, error) { return s.scanEndpoint(r) })
	return out, wrap(what, err)
}

// GetEndpoint returns an endpoint of the project, or ErrNotFound.
func (s *Store) GetEndpoint(ctx context.Context, projectID, id string) (*kinehook.Endpoint, error) {
	e, err := s.scanEndpoint(s.pool.QueryRow(ctx, `SELECT `+endpointCols+` FROM endpoints WHERE id = $1 AND project_id = $2`, id, projectID))
	return e, wrap("get endpoint", err)
}

// ListEndpoints returns the project's endpoints, oldest first.
func (s *Store) ListEndpoints(ctx context.Context, projectID string) ([]*kinehook.Endpoint, error) {
	return s.queryEndpoints(ctx, "list endpoints",
		`SELECT `+endpointCols+` FROM endpoints WHERE project_id = $1 ORDER BY created_at, id`, projectID)
}

// ListEndpointsPage pages a project's endpoints oldest first, by
// (created_at, id) after the cursor's pair (index endpoints_project_page).
func (s *Store) ListEndpointsPage(ctx context.Context, projectID, cursor string, limit int) ([]*kinehook.Endpoint, string, error) {
	limit = min(max(limit, 1), maxListLimit)
	var out []*kinehook.Endpoint
	var err error
	if cursor == "" {
		out, err = s.queryEndpoints(ctx, "list endpoints",
			`SELECT `+endpointCols+` FROM endpoints WHERE project_id = $1 ORDER BY created_at, id LIMIT $2`, projectID, limit+1)
	} else {
		t, id, derr := kinehook.DecodeEndpointCursor(cursor)
		if derr != nil {
			return nil, "", derr
		}
		out, err = s.queryEndpoints(ctx, "list endpoints",
			`SELECT `+endpointCols+` FROM endpoints WHERE project_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4`,
			projectID, t, id, limit+1)
	}
	if err != nil {
		return nil, "", err
	}
	out, next := kinehook.EndpointPage(out, limit)
	return out, next, nil
}

// AllEndpoints returns every endpoint of every project.
func (s *Store) AllEndpoints(ctx context.Context) ([]*kinehook.Endpoint, error) {
	return s.queryEndpoints(ctx, "all endpoints", `SELECT `+endpointCols+` FROM endpoints ORDER BY created_at, id`)
}

// UpdateEndpoint saves every field of an endpoint but its id, project and
// creation time.
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
		e.UpdatedAt = now()
	}
	r, err := s.encodeEndpoint(e)
	if err != nil {
		return err
	}
	q := `UPDATE endpoints SET url = $3, description = $4, event_types = $5, headers = $6,
		disabled = $7, disabled_reason = $8, secrets = $9, scheme = $10, name = $11, login = $12, password = $13,
		rate_limit = $14, max_in_flight = $15, failing_since = $16, updated_at = $17, login_sealed = $18, headers_sealed = $19,
		type = $20, config = $21, credentials = $22,
		` + resetBreakerOnEnable + `
		WHERE id = $1 AND project_id = $2`
	args := []any{e.ID, e.ProjectID, e.URL, e.Description, r.eventTypes, r.headers, e.Disabled, e.DisabledReason, r.secrets,
		e.Scheme, e.Name, r.login, r.password, e.RateLimit, e.MaxInFlight, nullTime(e.FailingSince), e.UpdatedAt.UTC(),
		r.loginSealed, r.headersSealed, r.typ, r.config, r.credentials}
	if prev != nil {
		q += ` AND updated_at = $23`
		args = append(args, prev.UTC())
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return wrap("update endpoint", err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	if prev != nil {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM endpoints WHERE id = $1 AND project_id = $2)`, e.ID, e.ProjectID).Scan(&exists); err != nil {
			return wrap("update endpoint", err)
		}
		if exists {
			return kinehook.Errorf(kinehook.ECONFLICT, "endpoint %s was changed since it was read", e.ID)
		}
	}
	return wrap("update endpoint", pgx.ErrNoRows)
}

// resetBreakerOnEnable clears the stored breaker state when an update
// enables a disabled endpoint ($7 is the new disabled flag; the right-hand
// sides read the row as it was): re-enabled, it starts healthy, as the
// engine's state does. Otherwise the columns stay as the engine wrote them.
const resetBreakerOnEnable = `breaker_open = CASE WHEN disabled AND NOT $7 THEN false ELSE breaker_open END,
		breaker_probe_at = CASE WHEN disabled AND NOT $7 THEN NULL ELSE breaker_probe_at END,
		consecutive_failures = CASE WHEN disabled AND NOT $7 THEN 0 ELSE consecutive_failures END,
		paused_until = CASE WHEN disabled AND NOT $7 THEN NULL ELSE paused_until END`

// UpdateEndpointHealth applies one health change with a single UPDATE of the
// fields it concerns (see kinehook.Store).
func (s *Store) UpdateEndpointHealth(ctx context.Context, projectID, id string, u kinehook.HealthUpdate) (bool, error) {
	at := u.At.UTC()
	if u.At.IsZero() {
		at = now()
	}
	var q string
	var args []any
	switch u.Change {
	case kinehook.HealthFailing:
		if u.FailingSince.IsZero() {
			return false, fmt.Errorf("postgres: endpoint %s health: failing without a time", id)
		}
		q = `UPDATE endpoints SET failing_since = $3, updated_at = $4 WHERE id = $1 AND project_id = $2 AND failing_since IS NULL`
		args = []any{id, projectID, u.FailingSince.UTC(), at}
	case kinehook.HealthRecovered:
		q = `UPDATE endpoints SET failing_since = NULL, updated_at = $3 WHERE id = $1 AND project_id = $2 AND failing_since IS NOT NULL`
		args = []any{id, projectID, at}
	case kinehook.HealthDisabled:
		q = `UPDATE endpoints SET disabled = true, disabled_reason = $3, updated_at = $4 WHERE id = $1 AND project_id = $2 AND NOT disabled`
		args = []any{id, projectID, u.Reason, at}
	case kinehook.HealthBreaker:
		b := &u.Breaker
		q = `UPDATE endpoints SET breaker_open = $3, breaker_probe_at = $4, consecutive_failures = $5, paused_until = $6
			WHERE id = $1 AND project_id = $2 AND (breaker_open, breaker_probe_at, consecutive_failures, paused_until)
				IS DISTINCT FROM ($3, $4::timestamptz, $5, $6::timestamptz)`
		args = []any{id, projectID, b.Open, nullTime(b.ProbeAt), b.ConsecutiveFailures, nullTime(b.PausedUntil)}
	default:
		return false, fmt.Errorf("postgres: endpoint %s health: unknown change %d", id, u.Change)
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return false, wrap("endpoint health", err)
	}
	return tag.RowsAffected() > 0, nil
}

// DeleteEndpoint removes the endpoint; its open deliveries become failed in
// the same transaction (their history stays).
func (s *Store) DeleteEndpoint(ctx context.Context, projectID, id string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM endpoints WHERE id = $1 AND project_id = $2`, id, projectID)
		if err != nil {
			return wrap("delete endpoint", err)
		}
		if tag.RowsAffected() == 0 {
			return wrap("delete endpoint", pgx.ErrNoRows)
		}
		_, err = tx.Exec(ctx, `UPDATE deliveries SET status = 'failed', next_attempt_at = NULL,
			last_error = 'endpoint deleted', updated_at = $2
			WHERE endpoint_id = $1 AND status IN ('pending', 'retrying')`, id, now())
		return wrap("delete endpoint: fail its open deliveries", err)
	})
}
