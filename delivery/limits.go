package delivery

// beginSend counts an attempt about to start; false once Shutdown has begun.
func (e *Engine) beginSend() bool {
	e.sendMu.Lock()
	defer e.sendMu.Unlock()
	if e.sendStopped {
		return false
	}
	e.sendN++
	return true
}

// endSend counts an attempt finished (recorded, requeued or abandoned).
func (e *Engine) endSend() {
	e.sendMu.Lock()
	e.sendN--
	if e.sendN == 0 && e.sendStopped {
		close(e.sendDrained)
	}
	e.sendMu.Unlock()
}

// acquireGlobal takes a global in-flight slot, or queues the endpoint for
// the next free one. A slot handed over by releaseGlobal (gGrant) comes first.
func (e *Engine) acquireGlobal(es *epState) bool {
	e.gMu.Lock()
	defer e.gMu.Unlock()
	if es.gGrant > 0 {
		es.gGrant--
		return true
	}
	if e.gInFlight < e.cfg.MaxInFlight && len(e.gWaiters) == 0 {
		e.gInFlight++
		return true
	}
	if !es.gWaiting {
		es.gWaiting = true
		e.gWaiters = append(e.gWaiters, es)
	}
	return false
}

// releaseSlot gives back a slot that was never used (shutdown).
func (e *Engine) releaseSlot() {
	e.gMu.Lock()
	e.gInFlight--
	e.gMu.Unlock()
}

// releaseGlobal frees a slot: when endpoints wait for one, it goes to the
// first in line (round robin); if that one no longer needs it, to the next.
func (e *Engine) releaseGlobal() {
	for {
		e.gMu.Lock()
		if len(e.gWaiters) == 0 {
			e.gInFlight--
			e.gMu.Unlock()
			return
		}
		next := e.gWaiters[0]
		e.gWaiters[0] = nil
		e.gWaiters = e.gWaiters[1:]
		next.gWaiting = false
		next.gGrant++
		e.gMu.Unlock()

		e.withEndpoint(next, nil)

		e.gMu.Lock()
		if next.gGrant == 0 {
			e.gMu.Unlock()
			return
		}
		next.gGrant-- // not used: pass it on
		e.gMu.Unlock()
	}
}
