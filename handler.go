package kinehook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/kinehook/kinehook/internal/bodylimit"
)

// DefaultMaxBodyBytes is the largest body the Handler reads (1 MiB).
const DefaultMaxBodyBytes = 1 << 20

// BasicAuth is the login and password a sender (Kinescope) puts in each
// request's Authorization header.
type BasicAuth struct {
	Login    string
	Password string
}

// HandlerOptions configures a Handler. At least one credential (Secrets,
// PublicKeys or BasicAuth) is required unless AllowUnauthenticated is set.
// When several are given, a request must satisfy each kind: Basic Auth and a
// signature made by one of the secrets or public keys.
type HandlerOptions struct {
	// Secrets are whsec_ secrets; several during a rotation.
	Secrets []string
	// PublicKeys are whpk_ keys verifying "v1a" (ed25519) signatures.
	PublicKeys []string
	// BasicAuth, when set, is required on every request.
	BasicAuth *BasicAuth
	// AllowUnauthenticated accepts requests when no credential is
	// configured; for local development only.
	AllowUnauthenticated bool

	// Tolerance is the allowed clock difference (default 5 minutes).
	Tolerance time.Duration
	// MaxBodyBytes limits the body (default 1 MiB); larger ones get 413.
	MaxBodyBytes int64
	// Deduper remembers handled deliveries (default: NewMemoryDeduper with
	// DedupTTL).
	Deduper Deduper
	// DedupTTL is the default deduper's TTL (default 24 h).
	DedupTTL time.Duration
	// DedupKey, when set, replaces the default key (see Incoming.DedupKey);
	// returning "" handles the request without de-duplication. Use it, for
	// example, to key Kinescope's id-less live events on something finer.
	DedupKey func(in *Incoming) string
	// Logger receives a record of each request's outcome, plus a warning
	// for an unknown type or status and an error for a failing callback
	// (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time

	// Typed callbacks, one per catalog type. A nil callback falls back to
	// OnEvent. Returning an error answers 500 so that the sender retries.
	OnMediaStatus      func(ctx context.Context, d *Incoming, data MediaData) error
	OnLiveCreated      func(ctx context.Context, d *Incoming, data LiveData) error
	OnLiveConnected    func(ctx context.Context, d *Incoming, data LiveData) error
	OnLiveDisconnected func(ctx context.Context, d *Incoming, data LiveData) error
	OnLiveFinished     func(ctx context.Context, d *Incoming, data LiveData) error
	OnLiveCancelled    func(ctx context.Context, d *Incoming, data LiveData) error
	OnLiveEnabled      func(ctx context.Context, d *Incoming, data LiveData) error
	// OnOperational is called for kinehook's own endpoint.disabled and
	// endpoint.recovered (d.Event.Type says which), sent to endpoints that
	// subscribe to them, such as a project's operations_url.
	OnOperational func(ctx context.Context, d *Incoming, data OperationalData) error
	// OnUnknown is called for event types outside the catalog; without it
	// they are logged and answered 200.
	OnUnknown func(ctx context.Context, d *Incoming) error
	// OnEvent is called for every event that has no more specific callback.
	OnEvent func(ctx context.Context, d *Incoming) error

	// OnResult, when set, is told how every request was answered (after
	// the answer is written); the listen command prints from it.
	OnResult func(Result)
}

// Incoming is one received webhook request as the callbacks see it.
type Incoming struct {
	// ID is the webhook-id header ("" when absent, as from Kinescope).
	ID string
	// Timestamp is the webhook-timestamp header (zero when absent).
	Timestamp time.Time
	// Attempt is the webhook-attempt header when the sender sets it, else the
	// number of times the Deduper saw this delivery's key within its TTL,
	// 1-based.
	Attempt int
	// Event is the body parsed leniently.
	Event *ParsedEvent
	// Header and Body are the request as received.
	Header http.Header
	Body   []byte
	// DedupKey is the key the Deduper tracks: "id:" + webhook-id, or when
	// there is no id "evt:" + event, resource key and status for a known
	// type, "body:" + the body's SHA-256 for an unknown one.
	DedupKey string
	// Verified tells how the request was authenticated: "signature",
	// "basic", "signature+basic", or "" when no credential is configured.
	Verified string

	reply *reply
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// Reply makes the Handler answer with status, header and body instead of
// 200 {"success":true}. A non-2xx reply leaves the delivery unhandled (not
// marked as seen), like an error; a callback error with a 2xx reply answers
// 500. The listen command uses it to pass on the forwarded app's answer.
func (d *Incoming) Reply(status int, header http.Header, body []byte) {
	d.reply = &reply{status: status, header: header.Clone(), body: body}
}

type deliveryKey struct{}

// IncomingFromContext returns the Incoming of the request a callback's ctx
// belongs to.
func IncomingFromContext(ctx context.Context) (*Incoming, bool) {
	d, ok := ctx.Value(deliveryKey{}).(*Incoming)
	return d, ok
}

// Result describes how a request was answered.
type Result struct {
	Status int
	// Code is the error code of a failed request ("" on success).
	Code string
	// Err is why the request failed, or the callback's error.
	Err error
	// Duplicate is true when the delivery had been handled before.
	Duplicate bool
	// Incoming is nil when the request failed before parsing.
	Incoming *Incoming
	// Method, Path and WebhookID (the webhook-id header, "" when absent)
	// are the request's, set even when Incoming is nil, so that a refusal
	// can say which request it was.
	Method, Path, WebhookID string
}

// Handler receives webhooks: it reads the raw body (bounded), checks the
// credentials, parses leniently, de-duplicates and calls the callbacks.
type Handler struct {
	opts     HandlerOptions
	verifier *Verifier
	dedup    Deduper
	log      *slog.Logger
	now      func() time.Time
	maxBody  int64
}

// NewHandler checks opts and returns the Handler.
func NewHandler(opts HandlerOptions) (*Handler, error) {
	h := &Handler{opts: opts, dedup: opts.Deduper, log: opts.Logger, now: opts.Now, maxBody: opts.MaxBodyBytes}
	if keys := append(append([]string(nil), opts.Secrets...), opts.PublicKeys...); len(keys) > 0 {
		for _, k := range opts.PublicKeys {
			if _, err := DecodePublicKey(k); err != nil {
				return nil, fmt.Errorf("handler: %w", err)
			}
		}
		v, err := NewVerifier(keys)
		if err != nil {
			return nil, fmt.Errorf("handler: %w", err)
		}
		v.Tolerance = opts.Tolerance
		h.verifier = v
	}
	if h.verifier == nil && opts.BasicAuth == nil && !opts.AllowUnauthenticated {
		return nil, errors.New("handler: no Secrets, PublicKeys or BasicAuth; set AllowUnauthenticated to accept anyone")
	}
	if h.dedup == nil {
		h.dedup = NewMemoryDeduper(DefaultDedupCapacity, opts.DedupTTL)
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	return h, nil
}

// Error codes of the Handler's answers besides those of errors.go.
const (
	codeMethodNotAllowed = "method_not_allowed"
	codeCallbackFailed   = "callback_failed"
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res := h.serve(w, r)
	if h.opts.OnResult != nil {
		res.Method, res.Path, res.WebhookID = r.Method, r.URL.Path, r.Header.Get("webhook-id")
		h.opts.OnResult(res)
	}
}

func (h *Handler) fail(w http.ResponseWriter, status int, code string, err error, d *Incoming) Result {
	if status == http.StatusUnauthorized && h.opts.BasicAuth != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="kinehook", charset="UTF-8"`)
	}
	writeJSONError(w, status, code, err.Error())
	return Result{Status: status, Code: code, Err: err, Incoming: d}
}

func writeJSONError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": message}})
}

var successBody = []byte(`{"success":true}` + "\n")

func writeSuccess(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(successBody)
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) Result {
	log := h.log.With("remote", r.RemoteAddr, "webhook_id", r.Header.Get(HeaderID))
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return h.fail(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, fmt.Errorf("method %s not allowed; webhooks are POSTed", r.Method), nil)
	}
	body, err := bodylimit.Read(w, r, h.maxBody)
	if err != nil {
		if tl, ok := errors.AsType[*bodylimit.TooLargeError](err); ok {
			log.Warn("webhook too large", "content_length", tl.ContentLength)
			return h.fail(w, http.StatusRequestEntityTooLarge, ETOOLARGE, tl, nil)
		}
		return h.fail(w, http.StatusBadRequest, EMALFORMED, err, nil)
	}
	d := &Incoming{ID: r.Header.Get(HeaderID), Header: r.Header, Body: body}
	if unix, err := strconv.ParseInt(r.Header.Get(HeaderTimestamp), 10, 64); err == nil {
		d.Timestamp = time.Unix(unix, 0)
	}
	if err := h.authenticate(r, body, d); err != nil {
		log.Warn("webhook refused", "err", err)
		return h.fail(w, http.StatusUnauthorized, EUNAUTHORIZED, err, nil)
	}
	ev, err := ParseLenient(body)
	if err != nil {
		code := EINVALID
		var ve *ValidationError
		if errors.As(err, &ve) && ve.Malformed {
			code = EMALFORMED
		}
		log.Warn("webhook body rejected", "err", err)
		return h.fail(w, http.StatusBadRequest, code, err, nil)
	}
	d.Event = ev
	d.DedupKey = dedupKey(d.ID, ev, d.Body)
	if h.opts.DedupKey != nil {
		d.DedupKey = h.opts.DedupKey(d)
	}
	log = log.With("event", ev.Type, "resource", ev.ResourceKey())

	ctx := context.WithValue(r.Context(), deliveryKey{}, d)
	dedup := h.dedup
	if d.DedupKey == "" {
		dedup = noDedup{}
	}
	attempt, seen, err := dedup.Claim(ctx, d.DedupKey)
	if err != nil {
		log.Error("dedup claim failed", "err", err)
		return h.fail(w, http.StatusServiceUnavailable, EUNAVAILABLE, fmt.Errorf("de-duplication: %w", err), d)
	}
	d.Attempt = attempt
	if n, err := strconv.Atoi(r.Header.Get(HeaderAttempt)); err == nil && n > 0 {
		d.Attempt = n
	}
	if seen {
		log.Info("duplicate webhook; already handled", "attempt", d.Attempt)
		writeSuccess(w)
		return Result{Status: http.StatusOK, Duplicate: true, Incoming: d}
	}
	if ev.UnknownType {
		log.Warn("webhook of unknown event type", "attempt", d.Attempt)
	} else if ev.UnknownStatus {
		log.Warn("webhook with unknown status", "status", ev.Media.Status, "attempt", d.Attempt)
	}

	if err := h.dispatch(ctx, d); err != nil {
		if rerr := dedup.Release(context.WithoutCancel(ctx), d.DedupKey); rerr != nil {
			log.Error("dedup release failed", "err", rerr)
		}
		log.Error("webhook callback failed", "err", err, "attempt", d.Attempt)
		if d.reply != nil && (d.reply.status < 200 || d.reply.status > 299) {
			return h.writeReply(w, d, err)
		}
		// The sender records answers: say nothing of the application's internals.
		writeJSONError(w, http.StatusInternalServerError, codeCallbackFailed, "the webhook could not be processed; retry later")
		return Result{Status: http.StatusInternalServerError, Code: codeCallbackFailed, Err: fmt.Errorf("callback: %w", err), Incoming: d}
	}
	if d.reply != nil && (d.reply.status < 200 || d.reply.status > 299) {
		if rerr := dedup.Release(context.WithoutCancel(ctx), d.DedupKey); rerr != nil {
			log.Error("dedup release failed", "err", rerr)
		}
		log.Warn("webhook answered with a failure status", "status", d.reply.status, "attempt", d.Attempt)
		return h.writeReply(w, d, fmt.Errorf("answered %d", d.reply.status))
	}
	if err := dedup.Commit(context.WithoutCancel(ctx), d.DedupKey); err != nil {
		// The event was handled; a copy must not wait on a claim that
		// nothing will end. Released, a later copy is handled again
		// (at least once).
		log.Error("dedup commit failed; released the key instead", "err", err)
		if rerr := dedup.Release(context.WithoutCancel(ctx), d.DedupKey); rerr != nil {
			log.Error("dedup release failed", "err", rerr)
		}
	}
	log.Info("webhook handled", "attempt", d.Attempt)
	if d.reply != nil {
		return h.writeReply(w, d, nil)
	}
	writeSuccess(w)
	return Result{Status: http.StatusOK, Incoming: d}
}

func (h *Handler) writeReply(w http.ResponseWriter, d *Incoming, err error) Result {
	for k, vs := range d.reply.header {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Length", "Connection", "Transfer-Encoding", "Keep-Alive", "Upgrade", "Trailer":
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(d.reply.status)
	_, _ = w.Write(d.reply.body)
	res := Result{Status: d.reply.status, Err: err, Incoming: d}
	if err != nil {
		res.Code = codeCallbackFailed
	}
	return res
}

// authenticate applies every configured credential check.
func (h *Handler) authenticate(r *http.Request, body []byte, d *Incoming) error {
	if h.opts.BasicAuth != nil {
		if !CheckBasicAuth(r, h.opts.BasicAuth.Login, h.opts.BasicAuth.Password) {
			if _, _, ok := r.BasicAuth(); !ok {
				return errors.New("missing Basic Auth credentials")
			}
			return errors.New("wrong Basic Auth credentials")
		}
		d.Verified = "basic"
	}
	if h.verifier != nil {
		if err := h.verifier.Verify(r.Header, body, h.now()); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		if d.Verified != "" {
			d.Verified = "signature+basic"
		} else {
			d.Verified = "signature"
		}
	}
	return nil
}

// dedupKey is the webhook-id when there is one; Kinescope sends none, so
// then it is the event type, resource key and status. For a type this
// package does not know, which fields tell two events apart is unknown too,
// and an operational event repeats its endpoint and reason over time: only
// an identical body counts as the same event.
func dedupKey(id string, ev *ParsedEvent, body []byte) string {
	if id != "" {
		return "id:" + id
	}
	if ev.UnknownType || ev.Operational != nil {
		sum := sha256.Sum256(body)
		return "body:" + hex.EncodeToString(sum[:])
	}
	status := ""
	if ev.Media != nil {
		status = string(ev.Media.Status)
	}
	return "evt:" + strconv.Quote(string(ev.Type)) + ":" + strconv.Quote(ev.ResourceKey()) + ":" + strconv.Quote(status)
}

// dispatch calls the callback for d's event, turning a panic into an error.
func (h *Handler) dispatch(ctx context.Context, d *Incoming) (err error) {
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("webhook callback panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("callback panicked: %v", p)
		}
	}()
	o := &h.opts
	ev := d.Event
	if ev.UnknownType {
		if o.OnUnknown != nil {
			return o.OnUnknown(ctx, d)
		}
		if o.OnEvent != nil {
			return o.OnEvent(ctx, d)
		}
		return nil
	}
	if ev.Media != nil && o.OnMediaStatus != nil {
		return o.OnMediaStatus(ctx, d, *ev.Media)
	}
	if ev.Operational != nil && o.OnOperational != nil {
		return o.OnOperational(ctx, d, *ev.Operational)
	}
	if ev.Live != nil {
		var fn func(context.Context, *Incoming, LiveData) error
		switch ev.Type {
		case EventLiveCreated:
			fn = o.OnLiveCreated
		case EventLiveConnected:
			fn = o.OnLiveConnected
		case EventLiveDisconnected:
			fn = o.OnLiveDisconnected
		case EventLiveFinished:
			fn = o.OnLiveFinished
		case EventLiveCancelled:
			fn = o.OnLiveCancelled
		case EventLiveEnabled:
			fn = o.OnLiveEnabled
		}
		if fn != nil {
			return fn(ctx, d, *ev.Live)
		}
	}
	if o.OnEvent != nil {
		return o.OnEvent(ctx, d)
	}
	return nil
}

// noDedup handles every request: for keys a DedupKey function left empty.
type noDedup struct{}

func (noDedup) Claim(context.Context, string) (int, bool, error) { return 1, false, nil }
func (noDedup) Commit(context.Context, string) error             { return nil }
func (noDedup) Release(context.Context, string) error            { return nil }
