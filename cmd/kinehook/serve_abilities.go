package main

import (
	"fmt"

	"github.com/kinehook/kinehook"
)

// serveAbilities are the abilities `kinehook serve` needs beyond
// kinehook.Store, taken from the store and coordinator it opened.
type serveAbilities struct {
	// retention removes old events: any project may set a retention, so
	// every server needs it.
	retention kinehook.RetentionStore
	// rejects keeps the inputs ingest sources refused, and prunes them;
	// the API lists them for every project.
	rejects kinehook.RejectStore
	// ready is the readiness of this instance's share of the work (nil
	// without a coordinator: a single instance is ready when it serves).
	ready func() error
}

// requireAbilities returns what serve needs of st and coord, or an error
// naming what is missing: a store without DeleteBefore refuses to start
// rather than silently keeping every event forever.
func requireAbilities(st kinehook.Store, coord kinehook.Coordinator) (serveAbilities, error) {
	var a serveAbilities
	rs, ok := st.(kinehook.RetentionStore)
	if !ok {
		return a, fmt.Errorf("store %T cannot remove old events (it lacks DeleteBefore, kinehook.RetentionStore), which retention needs", st)
	}
	a.retention = rs
	rj, ok := st.(kinehook.RejectStore)
	if !ok {
		return a, fmt.Errorf("store %T cannot keep rejected inputs (it lacks kinehook.RejectStore), which ingest sources and the rejected-input list need", st)
	}
	a.rejects = rj
	if coord == nil {
		return a, nil
	}
	r, ok := coord.(kinehook.ReadinessChecker)
	if !ok {
		return a, fmt.Errorf("coordinator %T cannot report readiness (it lacks Ready, kinehook.ReadinessChecker), which the API's readiness check needs", coord)
	}
	a.ready = r.Ready
	return a, nil
}
