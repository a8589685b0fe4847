package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// relay is the floor under any system that takes each event over HTTP and
// delivers it over HTTP: it answers 202 as soon as it has read a POST and
// then posts the body, signed as kinehook signs it, to the sink. No store,
// no validation, no ordering, no retries. Its rate in the same run as
// kinehook's says what the two HTTP exchanges per delivery cost on this
// machine, apart from everything kinehook adds to them.
type relay struct {
	url  string
	to   string
	srv  *http.Server
	ln   net.Listener
	hc   *http.Client
	sem  chan struct{}
	wg   sync.WaitGroup
	seq  atomic.Int64
	ctx  context.Context
	stop context.CancelFunc
	fail failures
}

// relayInFlight bounds the relay's outbound requests, as the engine's
// in-flight limit bounds kinehook's.
const relayInFlight = 2048

func newRelay(to string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("relay listen: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &relay{
		url: "http://" + ln.Addr().String(), to: to, ln: ln, ctx: ctx, stop: stop,
		hc: newHTTPClient(relayInFlight), sem: make(chan struct{}, relayInFlight),
	}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *relay) serveHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := "msg_relay" + strconv.FormatInt(r.seq.Add(1), 10)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"id":"`+id+`"}`)
	r.sem <- struct{}{}
	r.wg.Add(1)
	go func() {
		defer func() { <-r.sem; r.wg.Done() }()
		if err := sendSigned(r.ctx, r.hc, r.to, id, body); err != nil {
			r.fail.add(err)
		}
	}()
}

// Close stops taking requests and waits for the relay's own posts.
func (r *relay) Close() error {
	err := r.srv.Close()
	r.stop()
	r.wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// runRelay measures the relay like runThroughput measures kinehook with one
// endpoint: the same bodies, clients and sink.
func runRelay(ctx context.Context, cfg Config) (*Result, error) {
	sink, err := NewSink(http.StatusNoContent)
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	r, err := newRelay(sink.URL + "/e/0")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p, err := newPoster(r.url, "relay", "relay", cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	p.url = r.url + "/"
	res, err := measure(ctx, cfg, p, sink, &Server{PID: 0}, Relay, 1, cfg.Events)
	if err != nil {
		return res, err
	}
	res.RSSScope = "process"
	return res, r.fail.err(int(r.seq.Load()))
}
