package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kinehook/kinehook"
)

// MaxProjectName bounds a project's name, in characters.
const MaxProjectName = 200

// ProjectInput is a new project's settings.
type ProjectInput struct {
	Name          string
	RetentionDays int
	OperationsURL string
}

// ProjectPatch changes the given (non-nil) settings of a project; an empty
// OperationsURL removes it, as an empty PortalOrigins removes them.
type ProjectPatch struct {
	Name          *string
	RetentionDays *int
	OperationsURL *string
	PortalOrigins *[]string
}

// CheckProjectName trims a project name and checks it: 1 to MaxProjectName
// characters.
func CheckProjectName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: "name is required"}
	case utf8.RuneCountInString(name) > MaxProjectName:
		return "", &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: fmt.Sprintf("name is longer than %d characters", MaxProjectName)}
	}
	return name, nil
}

// checkRetention checks a retention setting in days.
func checkRetention(days int) error {
	if days < 0 || days > kinehook.MaxRetentionDays {
		return &kinehook.Error{Code: kinehook.EINVALID, Field: "retention_days", Message: fmt.Sprintf("retention_days must be 0 to %d (0: the server default)", kinehook.MaxRetentionDays)}
	}
	return nil
}

// CreateProject makes a project and its API key (returned once: only its
// hash is stored), and the endpoint of its operations_url when set.
func (a *App) CreateProject(ctx context.Context, in ProjectInput) (*kinehook.Project, string, error) {
	name, err := CheckProjectName(in.Name)
	if err != nil {
		return nil, "", err
	}
	if err := checkRetention(in.RetentionDays); err != nil {
		return nil, "", err
	}
	if in.OperationsURL != "" {
		if err := a.CheckURL(in.OperationsURL, "operations_url"); err != nil {
			return nil, "", err
		}
	}
	key, err := NewProjectKey()
	if err != nil {
		return nil, "", err
	}
	p := &kinehook.Project{
		ID:            kinehook.NewID(kinehook.PrefixProject),
		Name:          name,
		CreatedAt:     a.stamp(),
		RetentionDays: in.RetentionDays,
		OperationsURL: in.OperationsURL,
	}
	if err := a.store.CreateProject(ctx, p, kinehook.HashKey(key)); err != nil {
		return nil, "", fmt.Errorf("create project: %w", err)
	}
	// The store made the project's first key ("default", full) from its
	// hash alone: give it its prefix.
	if err := a.store.NoteKeyUse(ctx, kinehook.HashKey(key), kinehook.KeyPrefix(key), time.Time{}); err != nil {
		return nil, "", fmt.Errorf("create project: key prefix: %w", err)
	}
	if err := a.syncOperationsEndpoint(ctx, p); err != nil {
		return nil, "", fmt.Errorf("operations endpoint: %w", err)
	}
	return p, key, nil
}

// DeleteProject removes project pid with everything in it (endpoints,
// events, deliveries, attempts, keys, idempotency keys); the admin's use
// case (the route checks the key). The engine drops the project's queued
// work first, so nothing more is sent, and once more after the rows are
// gone, so nothing loaded meanwhile stays; then every endpoint the project
// had is announced as changed, and the other instances, finding it gone,
// drop theirs. Its keys stop working at once here and within KeyCacheTTL
// elsewhere.
func (a *App) DeleteProject(ctx context.Context, pid string) error {
	unlock := a.lockProject(pid)
	defer unlock()
	if _, err := a.store.GetProject(ctx, pid); err != nil {
		return fmt.Errorf("get project: %w", err)
	}
	eps, err := a.store.ListEndpoints(ctx, pid)
	if err != nil {
		return fmt.Errorf("list endpoints: %w", err)
	}
	a.disp.ProjectDeleted(ctx, pid)
	if err := a.store.DeleteProject(ctx, pid); err != nil {
		return fmt.Errorf("delete project: %w", err)
	}
	a.forgetProjects()
	a.portals.forget()
	a.disp.ProjectDeleted(ctx, pid)
	for _, ep := range eps {
		a.disp.EndpointChanged(ctx, pid, ep.ID)
	}
	return nil
}

// GetProject returns a project (ENOTFOUND when there is none).
func (a *App) GetProject(ctx context.Context, pid string) (*kinehook.Project, error) {
	return a.store.GetProject(ctx, pid)
}

// ListProjects lists the projects p may see: every one for the admin, its
// own for a project key.
func (a *App) ListProjects(ctx context.Context, p *Principal) ([]*kinehook.Project, error) {
	if !p.Admin {
		return []*kinehook.Project{p.Project}, nil
	}
	return a.store.ListProjects(ctx)
}

// lockProject takes the project's settings lock; the returned func frees it.
func (a *App) lockProject(pid string) func() {
	m, _ := a.projLocks.LoadOrStore(pid, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// UpdateProject changes the given settings of a project. Read, change,
// write and the operations endpoint's sync are one step per project, so two
// changes cannot leave the project and its operations endpoint disagreeing.
func (a *App) UpdateProject(ctx context.Context, pid string, in ProjectPatch) (*kinehook.Project, error) {
	unlock := a.lockProject(pid)
	defer unlock()
	p, err := a.store.GetProject(ctx, pid)
	if err != nil {
		return nil, fmt.Errorf("get project: %w", err)
	}
	if err := a.applyProjectPatch(p, in); err != nil {
		return nil, err
	}
	if err := a.store.UpdateProject(ctx, p); err != nil {
		return nil, fmt.Errorf("update project: %w", err)
	}
	if in.OperationsURL != nil {
		if err := a.syncOperationsEndpoint(ctx, p); err != nil {
			return nil, fmt.Errorf("operations endpoint: %w", err)
		}
	}
	a.forgetProjects()
	a.portals.forget()
	return p, nil
}

// applyProjectPatch validates in and writes it into p.
func (a *App) applyProjectPatch(p *kinehook.Project, in ProjectPatch) error {
	if in.Name != nil {
		name, err := CheckProjectName(*in.Name)
		if err != nil {
			return &kinehook.Error{Code: kinehook.EINVALID, Field: "name", Message: fmt.Sprintf("name must be 1 to %d characters", MaxProjectName)}
		}
		p.Name = name
	}
	if in.RetentionDays != nil {
		if err := checkRetention(*in.RetentionDays); err != nil {
			return err
		}
		p.RetentionDays = *in.RetentionDays
	}
	if in.OperationsURL != nil {
		if *in.OperationsURL != "" {
			if err := a.CheckURL(*in.OperationsURL, "operations_url"); err != nil {
				return err
			}
		}
		p.OperationsURL = *in.OperationsURL
	}
	if in.PortalOrigins != nil {
		origins, err := CheckPortalOrigins(*in.PortalOrigins)
		if err != nil {
			return err
		}
		p.PortalOrigins = origins
	}
	return nil
}

// errUnchanged tells UpdateEndpoint's caller that nothing needed writing.
var errUnchanged = errors.New("unchanged")

// syncOperationsEndpoint makes the endpoint of the project's operations_url
// (kinehook.OperationsEndpointID) agree with it after the setting was given
// (callers hold the project's lock): created, subscribed to the operational
// events (endpoint.*) with a secret of its own, the first time; moved to a
// new URL and enabled (secret and history kept); enabled again when it was
// disabled because the setting had been cleared (not when someone or a 410
// disabled it and the same URL is sent again); disabled when the setting is
// cleared (its open deliveries wait for a URL; the endpoint is the project's
// one operations endpoint for good, so its history never attaches to
// another). Its writes are conditional, like every endpoint change, so a
// concurrent change of its other fields is neither lost nor undoes this.
func (a *App) syncOperationsEndpoint(ctx context.Context, p *kinehook.Project) error {
	id := kinehook.OperationsEndpointID(p.ID)
	_, err := a.store.GetEndpoint(ctx, p.ID, id)
	if kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		if p.OperationsURL == "" {
			return nil
		}
		created, err := a.createOperationsEndpoint(ctx, p)
		if created || err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("get operations endpoint: %w", err)
	}
	_, err = a.UpdateEndpoint(ctx, p.ID, id, func(ep *kinehook.Endpoint) error {
		// The setting as stored now, not as this call left it: another
		// instance may have changed it since (the lock is per process).
		cur, err := a.store.GetProject(ctx, p.ID)
		if err != nil {
			return fmt.Errorf("get project: %w", err)
		}
		return alignOperationsEndpoint(ep, cur.OperationsURL)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return fmt.Errorf("update operations endpoint: %w", err)
	}
	return nil
}

// alignOperationsEndpoint makes the operations endpoint ep agree with the
// project's operations_url (see syncOperationsEndpoint); errUnchanged when
// it already does.
func alignOperationsEndpoint(ep *kinehook.Endpoint, url string) error {
	switch {
	case url == "" && !ep.Disabled:
		ep.Disabled, ep.DisabledReason = true, kinehook.OperationsURLCleared
	case url != "" && (ep.URL != url || (ep.Disabled && ep.DisabledReason == kinehook.OperationsURLCleared)):
		ep.URL, ep.Disabled, ep.DisabledReason = url, false, ""
	default:
		return errUnchanged
	}
	return nil
}

// createOperationsEndpoint makes the project's operations endpoint; false
// without an error when another instance made it meanwhile (the caller then
// brings that one in line).
func (a *App) createOperationsEndpoint(ctx context.Context, p *kinehook.Project) (bool, error) {
	id := kinehook.OperationsEndpointID(p.ID)
	secret, err := kinehook.GenerateSecret()
	if err != nil {
		return false, err
	}
	now := a.stamp()
	ep := &kinehook.Endpoint{ID: id, ProjectID: p.ID, URL: p.OperationsURL,
		EventTypes:  []string{"endpoint.*"},
		Description: "operational events of the project (made by its operations_url)",
		Secrets:     []kinehook.EndpointSecret{{Value: secret}}, Scheme: kinehook.SchemeV1,
		CreatedAt: now, UpdatedAt: now}
	err = a.store.CreateEndpoint(ctx, ep)
	if err == nil {
		a.disp.EndpointChanged(ctx, p.ID, id)
		return true, nil
	}
	if _, gerr := a.store.GetEndpoint(ctx, p.ID, id); gerr != nil {
		return false, fmt.Errorf("create operations endpoint: %w", err)
	}
	return false, nil
}
