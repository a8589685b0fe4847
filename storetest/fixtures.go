package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

// NewProject creates a project with n endpoints taking every event type, for
// tests of a store or of what runs on one (the coordination tests).
func NewProject(t testing.TB, s kinehook.Store, n int) (*kinehook.Project, []*kinehook.Endpoint) {
	t.Helper()
	ctx := context.Background()
	p := &kinehook.Project{ID: kinehook.NewID(kinehook.PrefixProject), Name: "p"}
	if err := s.CreateProject(ctx, p, kinehook.HashKey(p.ID)); err != nil {
		t.Fatal(err)
	}
	var eps []*kinehook.Endpoint
	for range n {
		e := &kinehook.Endpoint{ID: kinehook.NewID(kinehook.PrefixEndpoint), ProjectID: p.ID, URL: "https://example.com/h",
			Secrets: []kinehook.EndpointSecret{{Value: "whsec_x"}}}
		if err := s.CreateEndpoint(ctx, e); err != nil {
			t.Fatal(err)
		}
		eps = append(eps, e)
	}
	return p, eps
}

// NewEvent is a media.update.status event ("done") of resource, created at
// at (zero: the store's clock).
func NewEvent(projectID, resource string, at time.Time) *kinehook.Event {
	return &kinehook.Event{
		ID:          kinehook.NewID(kinehook.PrefixEvent),
		ProjectID:   projectID,
		Type:        kinehook.EventMediaUpdateStatus,
		Payload:     []byte(fmt.Sprintf(`{"event":"media.update.status","data":{"id":%q,"status":"done"}}`, resource)),
		ResourceKey: resource,
		CreatedAt:   at,
	}
}
