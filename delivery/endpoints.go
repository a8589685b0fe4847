package delivery

import (
	"context"
	"errors"
	"time"

	"github.com/kinehook/kinehook"
)

// endpointStates is a snapshot of the endpoints' states, to walk without
// holding epMu while each one's own lock is taken.
func (e *Engine) endpointStates() []*epState {
	e.epMu.RLock()
	defer e.epMu.RUnlock()
	all := make([]*epState, 0, len(e.eps))
	for _, es := range e.eps {
		all = append(all, es)
	}
	return all
}

// endpointState returns the state of an endpoint, creating it (and loading
// the endpoint in the background) when unknown.
func (e *Engine) endpointState(projectID, id string) *epState {
	e.epMu.RLock()
	es := e.eps[id]
	e.epMu.RUnlock()
	if es != nil {
		return es
	}
	e.epMu.Lock()
	es = e.eps[id]
	if es == nil {
		es = newEPState(projectID, id)
		e.eps[id] = es
		go e.loadEndpoint(projectID, id)
	}
	e.epMu.Unlock()
	return es
}

// loadEndpoint loads an endpoint first seen in a delivery, retrying while
// the store fails (its deliveries wait meanwhile).
func (e *Engine) loadEndpoint(projectID, id string) {
	delay := 100 * time.Millisecond
	for try := 0; try < 10 && !e.stopping.Load(); try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		e.refresh(ctx, projectID, id)
		cancel()
		e.epMu.RLock()
		es := e.eps[id]
		e.epMu.RUnlock()
		if es == nil {
			return // deleted
		}
		es.mu.Lock()
		loaded := es.ep != nil
		es.mu.Unlock()
		if loaded {
			return
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Second)
	}
}

// setEndpointLocked installs a new version of the endpoint; es.mu must be held.
func (e *Engine) setEndpointLocked(es *epState, ep *kinehook.Endpoint) {
	old := es.ep
	es.ep = ep
	es.projectID = ep.ProjectID
	if old == nil {
		if !ep.FailingSince.IsZero() {
			es.failingSince = ep.FailingSince.UnixNano()
		}
		e.adoptBreakerLocked(es, ep)
		return
	}
	if old.Disabled && !ep.Disabled {
		// Re-enabled: start healthy, with a clean failure history.
		es.consecFail = 0
		es.breakerOpen = false
		es.probeInFlight = false
		es.backoff = 0
		es.failingSince = 0
		es.pausedUntil = 0
		es.disabling = false
		es.ratePausedUntil = 0
		if !ep.FailingSince.IsZero() {
			e.persistHealth(es, kinehook.HealthUpdate{Change: kinehook.HealthRecovered})
		}
		e.noteBreakerLocked(es)
	}
	if ep.RateLimit != old.RateLimit {
		es.tokens, es.lastRefill = 0, 0
	}
}

// EndpointChanged reloads an endpoint after the API changed it and tells the
// other instances.
func (e *Engine) EndpointChanged(ctx context.Context, projectID, endpointID string) {
	e.refresh(ctx, projectID, endpointID)
	if err := e.cfg.Coordinator.AnnounceEndpoint(ctx, projectID, endpointID); err != nil {
		e.storeWarn("delivery: announce endpoint", err, "endpoint_id", endpointID)
	}
}

// ProjectDeleted drops the queues of every endpoint of the project this
// engine knows. The app calls it before the store removes the project (so
// nothing more starts here) and again after (so nothing loaded meanwhile
// stays), then EndpointChanged for each of the project's endpoints, which
// tells the other instances: they reload each, find it gone and drop its
// queues too.
func (e *Engine) ProjectDeleted(_ context.Context, projectID string) {
	var gone []*epState
	e.epMu.Lock()
	for id, es := range e.eps {
		if es.projectID == projectID {
			gone = append(gone, es)
			delete(e.eps, id)
		}
	}
	e.epMu.Unlock()
	for _, es := range gone {
		e.forget(es)
	}
}

// RefreshEndpoint reloads an endpoint changed by another instance.
func (e *Engine) RefreshEndpoint(ctx context.Context, projectID, endpointID string) {
	e.refresh(ctx, projectID, endpointID)
}

func (e *Engine) refresh(ctx context.Context, projectID, id string) {
	ep, err := e.store.GetEndpoint(ctx, projectID, id)
	if err == nil || errors.Is(err, kinehook.ErrNotFound) || kinehook.ErrorCode(err) == kinehook.ENOTFOUND {
		e.forgetTransports(id)
	}
	if errors.Is(err, kinehook.ErrNotFound) || (err != nil && kinehook.ErrorCode(err) == kinehook.ENOTFOUND) {
		e.epMu.Lock()
		es := e.eps[id]
		delete(e.eps, id)
		e.epMu.Unlock()
		if es != nil {
			e.forget(es)
		}
		return
	}
	if err != nil {
		e.storeError("delivery: reload endpoint", err, "endpoint_id", id)
		return
	}
	es := e.endpointStateNoLoad(ep)
	e.withEndpoint(es, func() { e.setEndpointLocked(es, ep) })
}

func (e *Engine) endpointStateNoLoad(ep *kinehook.Endpoint) *epState {
	e.epMu.Lock()
	defer e.epMu.Unlock()
	es := e.eps[ep.ID]
	if es == nil {
		es = newEPState(ep.ProjectID, ep.ID)
		e.eps[ep.ID] = es
	}
	return es
}

// forgetTransports tells the transports keeping state per endpoint that
// endpoint id was deleted or changed (its broker, credentials...).
func (e *Engine) forgetTransports(id string) {
	for _, t := range e.cfg.Transports {
		if f, ok := t.(TransportForgetter); ok {
			f.Forget(id)
		}
	}
}

// forget drops a deleted endpoint's queues (the store has failed its
// deliveries); attempts in flight still get recorded.
func (e *Engine) forget(es *epState) {
	es.mu.Lock()
	es.deleted = true
	var pls []*payload
	for _, q := range es.queues {
		pls = append(pls, es.dropQueue(q, true)...)
	}
	if es.timer != nil {
		es.timer.Stop()
		es.timer = nil
	}
	es.mu.Unlock()
	e.obs.EndpointDeleted(es.id)
	e.releasePayloads(pls)
}
