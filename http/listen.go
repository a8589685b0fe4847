package http

import (
	"context"
	"encoding/json"
	"fmt"
	nethttp "net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/app"
)

// Listen connection settings.
const (
	// listenReadLimit bounds one frame from the CLI (a result: a 4 KiB
	// excerpt and a short error, JSON-escaped).
	listenReadLimit = 64 << 10
	// listenPing is how often the server pings a listener; a CLI that
	// does not answer within listenPingTimeout is disconnected (the grace
	// starts).
	listenPing        = 15 * time.Second
	listenPingTimeout = 10 * time.Second
)

// WebSocket close codes the CLI acts on (4000-4999: the application's).
const (
	// CloseListenerEnded: the endpoint was deleted or resumed by another
	// connection; the CLI reconnects (making a new endpoint if it is gone).
	CloseListenerEnded websocket.StatusCode = 4000
)

// listen upgrades GET /v1/projects/{pid}/listen to a WebSocket and serves
// one `kinehook listen --server`: it opens (or, with ?endpoint_id=,
// resumes) the connection's cli endpoint, sends the hello frame with its
// secret, relays delivery frames down and result frames up until either
// side ends. It needs a full-scope key: it makes an endpoint.
func (s *Server) listen(w nethttp.ResponseWriter, r *nethttp.Request, p *app.Principal) {
	if err := p.Permits(app.OpChange); err != nil {
		writeError(w, err)
		return
	}
	if !websocketUpgrade(r) {
		writeError(w, &kinehook.Error{Code: kinehook.EMALFORMED, Message: "this route is a WebSocket: send Connection: Upgrade and Upgrade: websocket (kinehook listen --server does)"})
		return
	}
	q := r.URL.Query()
	in := app.ListenInput{EndpointID: q.Get("endpoint_id"), Client: r.Header.Get("User-Agent")}
	if q.Has("events") {
		in.EventTypes = splitList(q.Get("events"))
	}
	lst, err := s.app.OpenListener(r.Context(), r.PathValue("pid"), in)
	if err != nil {
		s.internal(w, "open listener", err)
		return
	}
	// The server's read and write timeouts are for requests, not for a
	// connection that lives as long as the developer's session.
	rc := nethttp.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		// Accept answered the client; the endpoint waits for a reconnect
		// like any other disconnect.
		s.log.Debug("api: listen: websocket accept", "err", err)
		s.abandon(lst)
		return
	}
	c.SetReadLimit(listenReadLimit)
	s.serveListener(context.WithoutCancel(r.Context()), c, lst)
}

// serveListener runs one accepted connection until it ends.
func (s *Server) serveListener(parent context.Context, c *websocket.Conn, lst *app.Listening) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	l := newWSListener(c)
	done := make(chan error, 1)
	go func() { done <- s.app.ServeListener(ctx, lst, l) }()
	go func() {
		t := time.NewTicker(listenPing)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(ctx, listenPingTimeout)
				err := c.Ping(pctx)
				pcancel()
				if err != nil {
					cancel()
					return
				}
			}
		}
	}()
	reads := make(chan struct{})
	go func() {
		defer close(reads)
		eid := lst.Endpoint.ID
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				cancel()
				return
			}
			f, err := kinehook.ParseListenFrame(data)
			if err != nil || f.Type != kinehook.FrameResult {
				s.log.Warn("api: listen: bad frame from the CLI", "endpoint_id", eid, "err", err)
				c.Close(websocket.StatusPolicyViolation, "bad frame")
				cancel()
				return
			}
			s.app.ListenerResult(eid, f)
		}
	}()
	select {
	case err := <-done: // deleted or resumed elsewhere: tell the CLI, then stop reading
		reason := "listener ended"
		if err != nil {
			reason = err.Error()
		}
		if len(reason) > 120 { // a close frame's reason is at most 123 bytes
			reason = reason[:120]
		}
		c.Close(CloseListenerEnded, reason)
		cancel()
	case <-ctx.Done(): // the CLI went away (or stopped answering pings)
		<-done
		c.CloseNow()
	}
	<-reads
}

// wsListener is a kinehook.Listener over one WebSocket.
type wsListener struct {
	c    *websocket.Conn
	once sync.Once
	// greeted is closed once the hello is written (greet: a second hello
	// must not close it twice). The app attaches the listener before it
	// sends the hello, so a delivery can come first: it waits here, since
	// the CLI expects the hello before anything else.
	greeted chan struct{}
	greet   sync.Once
}

func newWSListener(c *websocket.Conn) *wsListener {
	return &wsListener{c: c, greeted: make(chan struct{})}
}

// Send writes one frame as a JSON text message.
func (l *wsListener) Send(ctx context.Context, f *kinehook.ListenFrame) error {
	hello := f.Type == kinehook.FrameHello
	if !hello {
		select {
		case <-l.greeted:
		case <-ctx.Done():
			return fmt.Errorf("listen: no hello sent yet: %w", ctx.Err())
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if err := l.c.Write(ctx, websocket.MessageText, b); err != nil {
		return err
	}
	if hello {
		l.greet.Do(func() { close(l.greeted) })
	}
	return nil
}

// Close ends the connection with reason.
func (l *wsListener) Close(reason string) {
	l.once.Do(func() {
		go l.c.Close(websocket.StatusGoingAway, reason) // waits for the peer's close: never under the hub's lock
	})
}

// abandon marks the endpoint of a connection that never came up as
// disconnected: its grace starts.
func (s *Server) abandon(lst *app.Listening) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.app.AbandonListener(ctx, lst); err != nil {
		s.log.Warn("api: listen: mark listener disconnected", "endpoint_id", lst.Endpoint.ID, "err", err)
	}
}

// websocketUpgrade reports whether r asks for a WebSocket.
func websocketUpgrade(r *nethttp.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") && headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h nethttp.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// splitList reads a comma-separated query value, without empty entries.
func splitList(v string) []string {
	out := []string{}
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
