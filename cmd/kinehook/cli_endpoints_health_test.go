package main

import (
	"context"
	"strings"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func TestCLIEndpointTestStatsEnable(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "health")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KINEHOOK_URL", e.url)
	t.Setenv("KINEHOOK_API_KEY", p.APIKey)
	t.Setenv("KINEHOOK_PROJECT", p.ID)
	id := fieldOf(t, e.must(t, "endpoints", "create", "--url", e.sink.URL+"/hooks"), "id")
	other := fieldOf(t, e.must(t, "endpoints", "create", "--url", e.sink.URL+"/other"), "id")

	// A test event that the endpoint accepts.
	out := e.must(t, "endpoints", "test", id)
	if fieldOf(t, out, "status") != "succeeded" || fieldOf(t, out, "attempts") != "1" || fieldOf(t, out, "status_code") != "200" {
		t.Fatalf("test output:\n%s", out)
	}
	if n := e.sink.count(); n != 1 {
		t.Fatalf("the sink got %d requests; the test event goes to one endpoint", n)
	}
	// One it refuses: the command fails and says why.
	e.sink.setStatus(500)
	out, _, err = e.run(t, "endpoints", "test", id, "--event-type", "live.connected")
	if err == nil || !strings.Contains(err.Error(), "did not accept") || fieldOf(t, out, "status_code") != "500" || fieldOf(t, out, "event_type") != "live.connected" {
		t.Fatalf("refused test: %v\n%s", err, out)
	}
	did := fieldOf(t, out, "delivery")
	waitUntil(t, "the refused test delivery to fail", func() bool {
		d, err := e.admin.GetDelivery(context.Background(), p.ID, did)
		return err == nil && d.Status == kinehook.DeliveryFailed
	})
	// --json: the delivery as the API last answered it.
	d := decodeJSON[kinehook.Delivery](t, e.must(t, "endpoints", "test", other, "--wait", "0", "--json"))
	if d.EndpointID != other || d.Status != kinehook.DeliveryPending {
		t.Fatalf("test --wait 0 --json: %+v", d)
	}

	// Stats: 1 succeeded; the refused one retried once, then failed.
	out = e.must(t, "endpoints", "stats", id, "--window", "1h")
	var total []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "total (1h)") {
			total = strings.Fields(strings.TrimPrefix(line, "total (1h)"))
		}
	}
	if len(total) != 5 || total[0] != "1" || total[1] != "1" || total[2] != "1" {
		t.Fatalf("stats output (want totals 1 succeeded, 1 failed, 1 retried):\n%s", out)
	}
	st := decodeJSON[kinehook.Stats](t, e.must(t, "endpoints", "stats", id, "--window", "7d", "--json"))
	if st.Window != "7d" || len(st.Buckets) != 168 || st.Totals.Succeeded != 1 {
		t.Fatalf("stats --json: %s, %d buckets, totals %+v", st.Window, len(st.Buckets), st.Totals)
	}
	all := e.must(t, "endpoints", "stats", id, "--window", "1h", "--all-buckets")
	if n := strings.Count(all, "\n"); n != 62 { // header, 60 buckets, totals
		t.Fatalf("--all-buckets printed %d lines:\n%s", n, all)
	}
	if _, _, err := e.run(t, "endpoints", "stats", id, "--window", "2h"); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Fatalf("bad window: %v", err)
	}

	// Disable, enable.
	out = e.must(t, "endpoints", "disable", id)
	if !strings.HasPrefix(fieldOf(t, out, "state"), "disabled") {
		t.Fatalf("disable output:\n%s", out)
	}
	if !strings.Contains(e.must(t, "endpoints", "list"), "disabled") {
		t.Fatal("list does not show the disabled endpoint")
	}
	if _, _, err := e.run(t, "endpoints", "test", id); err == nil || !strings.Contains(err.Error(), "HTTP 409") {
		t.Fatalf("test of a disabled endpoint: %v", err)
	}
	got := decodeJSON[client.Endpoint](t, e.must(t, "endpoints", "enable", id, "--json"))
	if got.Disabled || got.DisabledReason != "" || got.Health.Breaker != kinehook.BreakerClosed || got.Health.ConsecutiveFailures != 0 {
		t.Fatalf("enable --json: %+v", got)
	}
	out = e.must(t, "endpoints", "get", id)
	if fieldOf(t, out, "state") != "enabled" || fieldOf(t, out, "breaker") != "closed" {
		t.Fatalf("get after enable:\n%s", out)
	}
}
