package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

// fakeTTY is a stdin that says it is a terminal.
type fakeTTY struct{ *strings.Reader }

func (fakeTTY) IsTerminal() bool { return true }

// runIn runs a command line with stdin.
func runIn(t *testing.T, stdin *strings.Reader, tty bool, args ...string) (string, string, error) {
	t.Helper()
	root := cliRoot()
	if tty {
		root.SetIn(fakeTTY{stdin})
	} else {
		root.SetIn(stdin)
	}
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errb.String(), err
}

// deliveries list searches with the API's filters, and deliveries retry
// re-sends failed deliveries in bulk, asking first on a terminal.
func TestDeliveriesListAndBulkRetry(t *testing.T) {
	e := newCLIEnv(t)
	ctx := t.Context()
	p, err := e.admin.CreateProject(ctx, "cli-search")
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(e.url, p.APIKey)
	ep, err := c.CreateEndpoint(ctx, p.ID, client.EndpointCreate{URL: e.sink.URL})
	if err != nil {
		t.Fatal(err)
	}
	e.sink.setStatus(400) // a final failure at once
	var evs []string
	for _, res := range []string{"v1", "v2", "v1", "v3"} {
		ev, err := c.SendEvent(ctx, p.ID, kinehook.EventMediaUpdateStatus, kinehook.MediaData{ID: res, Status: kinehook.StatusDone}, "")
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev.ID)
	}
	waitUntil(t, "four failed deliveries", func() bool {
		page, err := c.SearchDeliveries(ctx, p.ID, client.DeliverySearchOptions{Statuses: []kinehook.DeliveryStatus{kinehook.DeliveryFailed}})
		return err == nil && len(page.Data) == 4
	})
	base := []string{"--url", e.url, "--key", p.APIKey, "--project", p.ID}
	// A table of the search, newest first.
	out := e.must(t, append([]string{"deliveries", "list", "--endpoint", ep.ID, "--status", "failed,retrying", "--resource", "v1", "--since", "1h"}, base...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[1], "v1") || !strings.Contains(lines[1], "failed") ||
		!strings.Contains(lines[1], "media.update.status") {
		t.Fatalf("deliveries list table:\n%s", out)
	}
	// --json prints the API's answer; --all every page as one.
	e.answers.take()
	out = e.must(t, append([]string{"deliveries", "list", "--status", "failed", "--status", "succeeded", "--limit", "3", "--json"}, base...)...)
	answers := e.answers.take()
	if len(answers) != 1 || !strings.Contains(answers[0].uri, "status=failed&status=succeeded") {
		t.Fatalf("answers: %+v", answers)
	}
	var page, api map[string]any
	if json.Unmarshal([]byte(out), &page) != nil || json.Unmarshal(answers[0].body, &api) != nil || len(page["data"].([]any)) != 3 || page["next_cursor"] != api["next_cursor"] {
		t.Errorf("--json: %s\nAPI: %s", out, answers[0].body)
	}
	out = e.must(t, append([]string{"deliveries", "list", "--all", "--limit", "1", "--json"}, base...)...)
	var all struct {
		Data       []map[string]any `json:"data"`
		NextCursor string           `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all.Data) != 4 || all.NextCursor != "" || all.Data[0]["event_id"] != evs[3] {
		t.Errorf("--all --json: %v %s", err, out)
	}
	out = e.must(t, append([]string{"deliveries", "list", "--event-id", evs[1], "--event", "media.update.status"}, base...)...)
	if strings.Count(out, "dlv_") != 1 || !strings.Contains(out, "v2") {
		t.Errorf("--event-id: %s", out)
	}
	// The per-event form stays; mixing it with filters is refused.
	if out := e.must(t, append([]string{"deliveries", "list", evs[0]}, base...)...); strings.Count(out, "dlv_") != 1 {
		t.Errorf("deliveries list EVENT_ID: %s", out)
	}
	if _, _, err := e.run(t, append([]string{"deliveries", "list", evs[0], "--status", "failed"}, base...)...); err == nil {
		t.Error("deliveries list EVENT_ID --status: no error")
	}
	if _, _, err := e.run(t, append([]string{"deliveries", "list", "--status", "lost"}, base...)...); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Errorf("--status lost: %v", err)
	}
	if _, _, err := e.run(t, append([]string{"deliveries", "list", "--since", "someday"}, base...)...); err == nil || !strings.Contains(err.Error(), "--since") {
		t.Errorf("--since someday: %v", err)
	}

	e.sink.setStatus(200)
	// On a terminal it asks, and "n" re-sends nothing.
	e.answers.take()
	out, errOut, err := runIn(t, strings.NewReader("n\n"), true, append([]string{"deliveries", "retry", "--resource", "v1"}, base...)...)
	if err != nil || !strings.Contains(errOut, "Re-send 2 failed deliveries") || !strings.Contains(errOut, "resource v1") || out != "" {
		t.Fatalf("retry answered n: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	for _, a := range e.answers.take() {
		if a.method == "POST" {
			t.Fatalf("answering n still posted %s", a.uri)
		}
	}
	// "y" re-sends them.
	out, errOut, err = runIn(t, strings.NewReader("y\n"), true, append([]string{"deliveries", "retry", "--status", "failed", "--endpoint", ep.ID, "--resource", "v1"}, base...)...)
	if err != nil || strings.TrimSpace(out) != "re-sending 2 failed deliveries" {
		t.Fatalf("retry answered y: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	waitUntil(t, "the v1 deliveries to succeed", func() bool {
		page, err := c.SearchDeliveries(ctx, p.ID, client.DeliverySearchOptions{Statuses: []kinehook.DeliveryStatus{kinehook.DeliverySucceeded}})
		return err == nil && len(page.Data) == 2
	})
	// Not on a terminal, or with --yes, it does not ask; --json prints the API's answer.
	out, _, err = runIn(t, strings.NewReader(""), true, append([]string{"deliveries", "retry", "--yes", "--json", "--since", "1h"}, base...)...)
	if err != nil || strings.Join(strings.Fields(out), "") != `{"retried":2}` {
		t.Fatalf("retry --yes --json: %v %s", err, out)
	}
	out, _, err = runIn(t, strings.NewReader(""), false, append([]string{"deliveries", "retry"}, base...)...)
	if err != nil || strings.TrimSpace(out) != "re-sending 0 failed deliveries" {
		t.Fatalf("retry off a terminal: %v %s", err, out)
	}
	if _, _, err := e.run(t, append([]string{"deliveries", "retry", "dlv_x", "--endpoint", ep.ID}, base...)...); err == nil {
		t.Error("retry DELIVERY_ID --endpoint: no error")
	}
	if _, _, err := e.run(t, append([]string{"deliveries", "retry", "--endpoint", "ep_nope", "--yes"}, base...)...); err == nil || !strings.Contains(err.Error(), "not") {
		t.Errorf("retry of an unknown endpoint: %v", err)
	}
}
