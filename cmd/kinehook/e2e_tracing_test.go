package main

import (
	"encoding/json"
	"io"
	nethttp "net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/otlptest"
	"github.com/kinehook/kinehook/tracing"
)

// TestServeTracing runs `kinehook serve` with OTEL_EXPORTER_OTLP_ENDPOINT
// pointing at a real OTLP/HTTP receiver: the spans of an ingest, its commit
// and its attempt arrive (here only at shutdown, the batch delay being
// long, so SIGTERM must flush them), the endpoint receives a traceparent of
// the client's trace whose parent is the attempt's span, and the
// User-Agent names the version the binary prints.
func TestServeTracing(t *testing.T) {
	bin := buildKinehook(t)
	rcv := otlptest.Start(t)
	sink := newE2ESink(t)
	env := []string{"KINEHOOK_ALLOW_PRIVATE_NETWORKS=true", "OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.URL,
		"OTEL_SERVICE_NAME=kinehook-e2e", "OTEL_BSP_SCHEDULE_DELAY=600000", "OTEL_SDK_DISABLED=false"}
	p := startServe(t, bin, filepath.Join(t.TempDir(), "data"), env)
	if !strings.Contains(p.stderr.String()+p.stdout.String(), "tracing: exporting spans with OTLP/HTTP") {
		t.Errorf("serve did not log that it traces:\n%s", p.stderr)
	}
	m := adminKeyLine.FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("no generated admin key on stdout: %q", p.stdout)
	}
	var prj struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	p.mustCall("POST", "/v1/projects", m[1], map[string]any{"name": "traced"}, 201, &prj)
	var ep struct{ ID string }
	p.mustCall("POST", "/v1/projects/"+prj.ID+"/endpoints", prj.APIKey, map[string]any{"url": sink.URL + "/hook"}, 201, &ep)

	const clientTrace, clientSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req, _ := nethttp.NewRequest("POST", p.url+"/v1/projects/"+prj.ID+"/events",
		strings.NewReader(`{"event":"media.update.status","data":{"id":"v1","status":"done"}}`))
	req.Header.Set("Authorization", "Bearer "+prj.APIKey)
	req.Header.Set("traceparent", "00-"+clientTrace+"-"+clientSpan+"-01")
	res, err := nethttp.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ev struct{ ID, Traceparent string }
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 202 || json.Unmarshal(b, &ev) != nil {
		t.Fatalf("post event: %d %s", res.StatusCode, b)
	}
	waitE2E(t, 15*time.Second, "the delivery", func() bool { return sink.has([]string{ev.ID}) == 0 })
	sink.mu.Lock()
	h := sink.reqs[ev.ID].header
	sink.mu.Unlock()

	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("serve exit: %v\n%s", err, p.stderr)
	}
	spans := rcv.WaitFor(t, "the spans flushed at shutdown", 10*time.Second, func(sp []otlptest.Span) bool {
		return len(otlptest.Named(sp, tracing.SpanIngest)) == 1 && len(otlptest.Named(sp, tracing.SpanAttempt)) == 1 &&
			len(otlptest.Named(sp, tracing.SpanCommit)) >= 1
	})
	ingest, att := otlptest.Named(spans, tracing.SpanIngest)[0], otlptest.Named(spans, tracing.SpanAttempt)[0]
	if ingest.TraceID != clientTrace || ingest.ParentSpanID != clientSpan || ingest.Resource["service.name"] != "kinehook-e2e" {
		t.Errorf("ingest span %+v: want a child of the client's span, service kinehook-e2e", ingest)
	}
	if att.TraceID != clientTrace || att.ParentSpanID != ingest.SpanID || att.Attrs["kinehook.endpoint.id"] != ep.ID ||
		att.Attrs["kinehook.event.id"] != ev.ID || att.Attrs["kinehook.outcome"] != "success" {
		t.Errorf("attempt span %+v: want a child of the ingest span %s for endpoint %s, event %s", att, ingest.SpanID, ep.ID, ev.ID)
	}
	linked := false
	for _, c := range otlptest.Named(spans, tracing.SpanCommit) {
		for _, l := range c.Links {
			linked = linked || (l.TraceID == clientTrace && l.SpanID == ingest.SpanID)
		}
	}
	if !linked {
		t.Error("no commit span links to the ingest span")
	}
	if tp := h.Get("traceparent"); kinehook.TraceIDOf(tp) != clientTrace || tp[36:52] != att.SpanID {
		t.Errorf("delivered traceparent %q, want trace %s with the attempt span %s as parent", tp, clientTrace, att.SpanID)
	}
	if kinehook.TraceIDOf(ev.Traceparent) != clientTrace {
		t.Errorf("the event's traceparent %q is not in the client's trace", ev.Traceparent)
	}

	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct{ Version string }
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	want := info.Version
	if want == "(devel)" {
		want = "devel"
	}
	if ua := h.Get("User-Agent"); ua != "kinehook/"+want {
		t.Errorf("User-Agent %q, want kinehook/%s (the version the binary prints, %q)", ua, want, info.Version)
	}
}
