package delivery

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

const (
	testTraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	testTraceState  = "rojo=00f067aa0ba902b7"
)

// Without a Tracer every attempt sends the event's trace context as stored,
// the retry after a restart (the delivery read back from the store) too;
// an event without one sends none.
func TestTraceContextSentOnWithoutTracer(t *testing.T) {
	h := newHarness(t, nil)
	s := newSink(t)
	s.status(500)
	h.endpoint(s.srv.URL, nil)
	ev := h.event("v1")
	ev.Trace = kinehook.NewTraceContext(testTraceParent, testTraceState)
	res, err := h.eng.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	check := func(r sinkReq, what string) {
		t.Helper()
		if r.header.Get("traceparent") != testTraceParent || r.header.Get("tracestate") != testTraceState {
			t.Errorf("%s: traceparent %q tracestate %q, want the event's", what, r.header.Get("traceparent"), r.header.Get("tracestate"))
		}
	}
	check(s.next(t), "first attempt")
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	h.restart()
	s.status(200)
	h.clock.Advance(2 * time.Minute)
	check(s.next(t), "retry after a restart")
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)

	h.publish("v2")
	if r := s.next(t); r.header.Get("traceparent") != "" || r.header.Get("tracestate") != "" {
		t.Errorf("an event without trace context sent %q %q", r.header.Get("traceparent"), r.header.Get("tracestate"))
	}
}

// recTracer records the engine's calls of its Tracer.
type recTracer struct {
	mu       sync.Mutex
	commits  [][]string // event ids of each commit
	ended    int
	attempts []AttemptSpan
	results  []Result
}

func (r *recTracer) StartCommit(evs []*kinehook.Event) func(error) {
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	r.mu.Lock()
	r.commits = append(r.commits, ids)
	r.mu.Unlock()
	return func(err error) {
		r.mu.Lock()
		if err == nil {
			r.ended++
		}
		r.mu.Unlock()
	}
}

func (r *recTracer) StartAttempt(a AttemptSpan) (string, string, func(Result)) {
	r.mu.Lock()
	r.attempts = append(r.attempts, a)
	n := len(r.attempts)
	r.mu.Unlock()
	// A span id per attempt, as a tracer would make.
	parent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000a" + string(rune('0'+n)) + "-01"
	return parent, "span=" + string(rune('0'+n)), func(res Result) {
		r.mu.Lock()
		r.results = append(r.results, res)
		r.mu.Unlock()
	}
}

// With a Tracer, each commit and each attempt has its span: the attempt's
// describes the delivery and its number, the message carries the span's
// context, and the span ends with the attempt's result.
func TestTracerSpans(t *testing.T) {
	tr := &recTracer{}
	h := newHarness(t, func(c *Config) { c.Tracer = tr })
	s := newSink(t)
	s.status(http.StatusInternalServerError)
	ep := h.endpoint(s.srv.URL, nil)
	ev := h.event("v1")
	ev.Trace = kinehook.NewTraceContext(testTraceParent, testTraceState)
	res, err := h.eng.Publish(t.Context(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.next(t); r.header.Get("traceparent") != "00-4bf92f3577b34da6a3ce929d0e0e4736-00000000000000a1-01" || r.header.Get("tracestate") != "span=1" {
		t.Errorf("first attempt sent %q %q, want its span's context", r.header.Get("traceparent"), r.header.Get("tracestate"))
	}
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliveryRetrying, 1)
	s.status(200)
	h.idle() // the retry's timer is armed
	h.clock.Advance(time.Minute + 10*time.Second)
	if r := s.next(t); r.header.Get("tracestate") != "span=2" {
		t.Errorf("second attempt sent tracestate %q, want span=2", r.header.Get("tracestate"))
	}
	h.waitStatus(res.Deliveries[0].ID, kinehook.DeliverySucceeded, 2)
	h.publish("v2") // no trace context: the attempt still has its span
	s.next(t)
	h.idle()

	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.commits) != 2 || tr.commits[0][0] != res.Event.ID || tr.ended != 2 {
		t.Errorf("commit spans %v (%d ended), want one per publish, ended", tr.commits, tr.ended)
	}
	if len(tr.attempts) != 3 || len(tr.results) != 3 {
		t.Fatalf("%d attempt spans, %d ended, want 3", len(tr.attempts), len(tr.results))
	}
	for i, want := range []AttemptSpan{
		{EndpointID: ep.ID, DeliveryID: res.Deliveries[0].ID, EventID: res.Event.ID, EventType: kinehook.EventMediaUpdateStatus, Attempt: 1, TraceParent: testTraceParent, TraceState: testTraceState},
		{EndpointID: ep.ID, DeliveryID: res.Deliveries[0].ID, EventID: res.Event.ID, EventType: kinehook.EventMediaUpdateStatus, Attempt: 2, TraceParent: testTraceParent, TraceState: testTraceState},
	} {
		if tr.attempts[i] != want {
			t.Errorf("attempt span %d: %+v, want %+v", i, tr.attempts[i], want)
		}
	}
	if a := tr.attempts[2]; a.TraceParent != "" || a.EventType != kinehook.EventMediaUpdateStatus || a.Attempt != 1 {
		t.Errorf("untraced event's attempt span: %+v", a)
	}
	if tr.results[0].Outcome != OutcomeHTTPError || tr.results[0].StatusCode != 500 || tr.results[1].Outcome != OutcomeSuccess {
		t.Errorf("span results %+v", tr.results)
	}
}

// Off, an attempt of an event without trace context adds nothing to its
// message, and one with a trace context copies its strings: no allocation
// either way. With a tracer, the span learns the event's type from its
// body, wherever the key is.
func TestNoTraceCostWhenOff(t *testing.T) {
	e := &Engine{}
	var m Message
	j := job{it: &item{id: "dlv_1"}, ep: &kinehook.Endpoint{ID: "ep_1"}}
	if n := testing.AllocsPerRun(100, func() {
		if e.traceAttempt(j, &m) != nil {
			t.Fatal("a span without a tracer")
		}
	}); n != 0 || m.TraceParent != "" {
		t.Errorf("untraced attempt: %v allocations, traceparent %q", n, m.TraceParent)
	}
	j.it.trace = kinehook.NewTraceContext(testTraceParent, testTraceState)
	if n := testing.AllocsPerRun(100, func() { e.traceAttempt(j, &m) }); n != 0 || m.TraceParent != testTraceParent || m.TraceState != testTraceState {
		t.Errorf("traced event, tracing off: %v allocations, message %q %q", n, m.TraceParent, m.TraceState)
	}
	for body, want := range map[string]kinehook.EventType{
		`{"event":"live.created","data":{}}`:                  kinehook.EventLiveCreated,
		`{"data":{"event":"nested"},"event":"live.finished"}`: kinehook.EventLiveFinished,
		`not json`: "",
	} {
		if got := eventTypeOf([]byte(body)); got != want {
			t.Errorf("eventTypeOf(%s) = %q, want %q", body, got, want)
		}
	}
}
