package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

// SearchDeliveries, AllDeliveries, SearchEndpointDeliveries and
// RetryDeliveries speak the API's query and body as the server reads them.
func TestSearchAndRetryDeliveries(t *testing.T) {
	ts := newTestServer(t, nil)
	ctx := context.Background()
	p, c := ts.project(t, "search")
	ep, err := c.CreateEndpoint(ctx, p.ID, client.EndpointCreate{URL: ts.sink.URL})
	if err != nil {
		t.Fatal(err)
	}
	// 400 is a final failure at once: no retry schedule to wait for.
	ts.sinkCode.Store(400)
	var ids []string
	for _, res := range []string{"v1", "v2", "v1"} {
		ev, err := c.SendEvent(ctx, p.ID, kinehook.EventMediaUpdateStatus, kinehook.MediaData{ID: res, Status: kinehook.StatusDone}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
	}
	failed := []kinehook.DeliveryStatus{kinehook.DeliveryFailed}
	waitFor(t, "three failed deliveries", func() bool {
		page, err := c.SearchDeliveries(ctx, p.ID, client.DeliverySearchOptions{Statuses: failed})
		return err == nil && len(page.Data) == 3
	})
	page, err := c.SearchDeliveries(ctx, p.ID, client.DeliverySearchOptions{Resource: "v1", Limit: 1, EndpointID: ep.ID,
		Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryFailed, kinehook.DeliverySucceeded}, Since: time.Now().Add(-time.Hour)})
	if err != nil || len(page.Data) != 1 || page.NextCursor == "" {
		t.Fatalf("first page: %v %+v", err, page)
	}
	if d := page.Data[0]; d.EventID != ids[2] || d.ResourceKey != "v1" || d.EventType != kinehook.EventMediaUpdateStatus || d.CreatedAt.IsZero() {
		t.Errorf("newest v1 delivery: %+v", d)
	}
	var all []string
	for d, err := range c.AllDeliveries(ctx, p.ID, client.DeliverySearchOptions{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, d.EventID)
	}
	if len(all) != 3 || all[0] != ids[2] || all[2] != ids[0] {
		t.Errorf("AllDeliveries: %v", all)
	}
	byEP, err := c.SearchEndpointDeliveries(ctx, p.ID, ep.ID, client.DeliverySearchOptions{EventID: ids[1]})
	if err != nil || len(byEP.Data) != 1 || byEP.Data[0].ResourceKey != "v2" {
		t.Errorf("endpoint route: %v %+v", err, byEP)
	}
	if _, err := c.SearchEndpointDeliveries(ctx, p.ID, "ep_nope", client.DeliverySearchOptions{}); !client.IsNotFound(err) {
		t.Errorf("unknown endpoint: %v", err)
	}
	if _, err := c.SearchDeliveries(ctx, p.ID, client.DeliverySearchOptions{Statuses: []kinehook.DeliveryStatus{"lost"}}); err == nil {
		t.Error("an unknown status was accepted")
	}
	ts.sinkCode.Store(200)
	n, err := c.RetryDeliveries(ctx, p.ID, client.DeliverySearchOptions{EndpointID: ep.ID, Resource: "v1", Statuses: failed, Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)})
	if err != nil || n != 2 {
		t.Fatalf("RetryDeliveries(v1) = %d, %v; want 2", n, err)
	}
	waitFor(t, "the v1 deliveries to succeed", func() bool {
		page, err := c.SearchDeliveries(ctx, p.ID, client.DeliverySearchOptions{Statuses: []kinehook.DeliveryStatus{kinehook.DeliverySucceeded}})
		return err == nil && len(page.Data) == 2
	})
	if n, err := c.RetryDeliveries(ctx, p.ID, client.DeliverySearchOptions{}); err != nil || n != 1 {
		t.Errorf("RetryDeliveries(all) = %d, %v; want 1", n, err)
	}
}
