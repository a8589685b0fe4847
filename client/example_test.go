package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

// Register an endpoint and send an event with a project key.
func Example() {
	ctx := context.Background()
	c := client.New("http://127.0.0.1:8080", "kh_project_key")

	ep, err := c.CreateEndpoint(ctx, "prj_...", client.EndpointCreate{
		URL:        "https://example.com/webhooks",
		EventTypes: []string{"media.update.status", "live.*"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verify deliveries with", ep.Secret)

	ev, err := c.SendEvent(ctx, "prj_...", kinehook.EventMediaUpdateStatus,
		kinehook.MediaData{ID: "7127f2d7-0e96-40d0-9a03-2e987c096466", Status: kinehook.StatusDone},
		"video-7127f2d7-done") // the same key within 24 h creates nothing new
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("accepted", ev.ID)
}

// API errors carry the API's code.
func ExampleError() {
	c := client.New("http://127.0.0.1:8080", "kh_project_key")
	_, err := c.GetEndpoint(context.Background(), "prj_...", "ep_missing")
	var ae *client.Error
	if errors.As(err, &ae) && ae.Code == kinehook.ENOTFOUND {
		fmt.Println("no such endpoint:", ae.Message)
	}
}

// Walk every failed event, page after page.
func ExampleClient_AllEvents() {
	c := client.New("http://127.0.0.1:8080", "kh_project_key")
	opts := client.EventListOptions{Status: kinehook.DeliveryFailed, Limit: 100}
	for ev, err := range c.AllEvents(context.Background(), "prj_...", opts) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.ID, ev.Event)
	}
}

// Change only what is set: here, disable the endpoint and keep the rest.
func ExampleEndpointUpdate() {
	c := client.New("http://127.0.0.1:8080", "kh_project_key")
	_, err := c.UpdateEndpoint(context.Background(), "prj_...", "ep_...", client.EndpointUpdate{
		Disabled: client.Ptr(true),
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Keep the API's own JSON next to the typed result, e.g. to print it as is.
func ExampleWithResponseHook() {
	c := client.New("http://127.0.0.1:8080", "kh_project_key")
	var raw []byte
	ctx := client.WithResponseHook(context.Background(), func(r *client.Response) { raw = r.Body })
	d, err := c.GetDelivery(ctx, "prj_...", "dlv_...")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Status)
	fmt.Println(string(raw)) // every key the API sent, "next_attempt_at": null included
}

// Send several events in one request: all are stored or none, and they are
// delivered in this order.
func ExampleClient_SendEvents() {
	c := client.New("http://127.0.0.1:8080", "kh_project_key")
	evs, err := c.SendEvents(context.Background(), "prj_...", []client.BatchEvent{
		{Type: kinehook.EventMediaUpdateStatus, Data: kinehook.MediaData{ID: "7127f2d7-0e96-40d0-9a03-2e987c096466", Status: kinehook.StatusProcessing}},
		{Type: kinehook.EventMediaUpdateStatus, Data: kinehook.MediaData{ID: "7127f2d7-0e96-40d0-9a03-2e987c096466", Status: kinehook.StatusDone},
			IdempotencyKey: "video-7127f2d7-done"},
	})
	if err != nil {
		// A refused batch stores nothing; the error names the first bad
		// event, e.g. invalid (HTTP 422): events[1]: data.status: ...
		log.Fatal(err)
	}
	for _, ev := range evs {
		fmt.Println(ev.ID, ev.Replayed)
	}
}
