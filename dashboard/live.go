package dashboard

import (
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kinehook/kinehook"
)

// liveEvents is how many of the newest events a live stream watches.
const liveEvents = 20

// liveStream is the server-sent-events endpoint of a project's pages. Each
// LiveInterval it fingerprints what the page shows (the newest events and
// their deliveries, or one event's deliveries with ?event=ID) and sends
// "event: change" when the fingerprint moves; the page's script then reloads
// the affected list. It reads the store only: it is not on the delivery path.
func (h *Handler) liveStream(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	select {
	case <-h.closing:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	select {
	case h.live <- struct{}{}:
		defer func() { <-h.live }()
	default:
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many live streams", http.StatusServiceUnavailable)
		return
	}
	ctl := http.NewResponseController(w)
	_ = ctl.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	flush := flusher(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	eventID := r.URL.Query().Get("event")
	// The page passes the fingerprint of the state it was rendered from, so
	// a change between rendering and connecting is not missed.
	last, err := strconv.ParseUint(r.URL.Query().Get("fp"), 16, 64)
	if err != nil {
		if last, err = h.fingerprint(ctx, rc.project.ID, eventID); err != nil {
			h.log.Warn("dashboard: live fingerprint", "err", err)
		}
	}
	// Registered before the first byte goes out: a Shutdown that begins once
	// the client has seen the stream open must end it (RegisterOnShutdown
	// after Shutdown has started is never called).
	srvDone := h.serverDone(r)
	if _, err := io.WriteString(w, "retry: 3000\nevent: ready\ndata: {}\n\n"); err != nil || flush() != nil {
		return
	}
	tick := time.NewTicker(h.cfg.LiveInterval)
	defer tick.Stop()
	lastWrite := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.closing:
			return
		case <-srvDone:
			return
		case <-tick.C:
		}
		if h.sessions.get(r) == nil {
			_, _ = io.WriteString(w, "event: signedout\ndata: {}\n\n")
			_ = flush()
			return
		}
		fp, err := h.fingerprint(ctx, rc.project.ID, eventID)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("dashboard: live fingerprint", "err", err)
			}
			continue
		}
		var msg string
		switch {
		case fp != last:
			last = fp
			msg = "event: change\ndata: {}\n\n"
		case time.Since(lastWrite) > 15*time.Second:
			msg = ": keepalive\n\n"
		default:
			continue
		}
		if _, err := io.WriteString(w, msg); err != nil || flush() != nil {
			return
		}
		lastWrite = time.Now()
	}
}

// flusher returns a func that pushes what was written to w onto the
// network. Handlers in front of the dashboard wrap the ResponseWriter (for
// metrics, for routing); a wrapper whose Flush does not reach the
// connection would hold every message back, so after flushing through the
// wrappers it also flushes the innermost writer, reached through Unwrap.
func flusher(w http.ResponseWriter) func() error {
	inner := w
	for {
		u, ok := inner.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	outer, innerCtl := http.NewResponseController(w), http.NewResponseController(inner)
	return func() error {
		err := outer.Flush()
		if inner == w {
			return err
		}
		if ierr := innerCtl.Flush(); ierr != nil {
			return ierr
		}
		return nil
	}
}

// liveSrc is the live-stream URL of a page about to be rendered. Call it
// before reading what the page shows: then any later change moves the
// fingerprint away from the one in the URL and the page refreshes.
func (h *Handler) liveSrc(ctx context.Context, rc *reqCtx, eventID string) string {
	if rc.portal != nil {
		return "" // the portal's pages do not update live
	}
	v := url.Values{}
	if eventID != "" {
		v.Set("event", eventID)
	}
	if fp, err := h.fingerprint(ctx, rc.project.ID, eventID); err == nil {
		v.Set("fp", strconv.FormatUint(fp, 16))
	}
	if len(v) == 0 {
		return rc.base + "/live"
	}
	return rc.base + "/live?" + v.Encode()
}

// fingerprint hashes the state a live page shows.
func (h *Handler) fingerprint(ctx context.Context, projectID, eventID string) (uint64, error) {
	f := fnv.New64a()
	var ids []string
	if eventID != "" {
		ids = []string{eventID}
	} else {
		evs, _, err := h.store.ListEvents(ctx, projectID, kinehook.EventFilter{Limit: liveEvents})
		if err != nil {
			return 0, fmt.Errorf("list events: %w", err)
		}
		for _, ev := range evs {
			ids = append(ids, ev.ID)
		}
	}
	for _, id := range ids {
		fmt.Fprintf(f, "e%s;", id)
		ds, err := h.store.ListDeliveries(ctx, projectID, id)
		if err != nil {
			return 0, fmt.Errorf("list deliveries: %w", err)
		}
		for _, d := range ds {
			fmt.Fprintf(f, "d%s,%s,%d,%d;", d.ID, d.Status, d.Attempts, d.UpdatedAt.UnixNano())
		}
	}
	return f.Sum64(), nil
}
