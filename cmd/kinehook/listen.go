package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook"
)

func init() { rootCmd.AddCommand(newListenCmd()) }

// listenOptions are the flags of `kinehook listen`.
type listenOptions struct {
	addr       string
	secrets    []string
	publicKeys []string
	basicAuth  string
	forwardTo  string
	json       bool

	// Server mode (--server): the connection to kinehook serve.
	server  string
	key     string
	project string
	events  []string
}

func newListenCmd() *cobra.Command {
	o := &listenOptions{}
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Receive webhooks locally: verify, print, and optionally forward them to your app",
		Long: `listen runs the kinehook receiver Handler as a program. It takes POSTs on any
path, checks the Basic Auth credentials and/or Standard Webhooks signatures
you give it, parses the body leniently and prints one line per handled event
(type, resource id, status) on stdout. Duplicates (same webhook-id, or same
event, resource and status when there is no id) are answered 200 without
being handled or forwarded again: they print no event line on stdout, only a
"duplicate ..." note on stderr. Refused requests get a "refused: ..." note on
stderr naming the method, path and webhook-id, the status and the reason.

With --forward-to, each verified, new request is passed on to your app with
its headers and body unchanged, and answered with your app's status and body.

Without --secret, --public-key or --basic-auth it accepts unsigned requests
(and says so once).

With --server, listen instead connects to a running kinehook serve (a
WebSocket on the API's port, with a full-scope project key): the server
makes a temporary endpoint of type cli for the connection and sends its
deliveries down it, and listen passes each on to --forward-to with its
body and signed headers unchanged, and reports your app's answer back as
the attempt's outcome (retries, the delivery log, the dashboard work as for
any endpoint). No public URL, no --allow-private-networks. It prints the
endpoint's signing secret at start (stderr) and one line per delivery
(stdout). It reconnects by itself, resuming the same endpoint; the server
removes the endpoint a while (serve --listen-grace) after the last
disconnect.`,
		Example: `  kinehook listen --addr 127.0.0.1:8787 --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  kinehook listen --basic-auth kinescope:s3cret --forward-to http://127.0.0.1:3000/webhooks --json
  kinehook listen --server http://127.0.0.1:8080 --key kh_... --forward-to http://127.0.0.1:3000/hook --events 'media.*'`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if o.server != "" {
				for _, name := range []string{"addr", "secret", "public-key", "basic-auth"} {
					if cmd.Flags().Changed(name) {
						return fmt.Errorf("--%s is for the local receiver; with --server the server signs and listen forwards", name)
					}
				}
				return runListenServer(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			for _, name := range []string{"key", "project", "events"} {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("--%s needs --server", name)
				}
			}
			return runListen(ctx, o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "127.0.0.1:8787", "address to listen on (host:port; port 0 picks a free one)")
	f.StringArrayVar(&o.secrets, "secret", nil, "whsec_ signing secret (repeatable, for rotation)")
	f.StringArrayVar(&o.publicKeys, "public-key", nil, "whpk_ public key verifying v1a (ed25519) signatures (repeatable)")
	f.StringVar(&o.basicAuth, "basic-auth", "", "LOGIN:PASSWORD required as HTTP Basic Auth (what Kinescope sends)")
	f.StringVar(&o.forwardTo, "forward-to", "", "URL of your app to pass each verified request on to")
	f.BoolVar(&o.json, "json", false, "print one JSON object per event instead of a text line")
	f.StringVar(&o.server, "server", "", "URL of a kinehook server to receive deliveries from (server mode; needs --forward-to)")
	f.StringVar(&o.key, "key", "", "with --server: full-scope project key, or the admin key (env KINEHOOK_API_KEY, then `kinehook config`)")
	f.StringVar(&o.project, "project", "", "with --server: project id (default: the key's own; env KINEHOOK_PROJECT)")
	f.StringSliceVar(&o.events, "events", nil, "with --server: event types to receive, exact or prefix.* (comma-separated or repeated; default: every catalog type)")
	return cmd
}

// listenLine is the --json form of one handled event.
type listenLine struct {
	Time          time.Time       `json:"time"`
	Event         string          `json:"event"`
	ResourceID    string          `json:"resource_id"`
	Status        string          `json:"status,omitempty"`
	Message       string          `json:"message,omitempty"`
	VideoID       string          `json:"video_id,omitempty"`
	UnknownType   bool            `json:"unknown_type,omitempty"`
	UnknownStatus bool            `json:"unknown_status,omitempty"`
	WebhookID     string          `json:"webhook_id,omitempty"`
	Attempt       int             `json:"attempt"`
	HTTPStatus    int             `json:"http_status"`
	Data          json.RawMessage `json:"data"`
}

func listenLineOf(in *kinehook.Incoming, status int, now time.Time) listenLine {
	ev := in.Event
	l := listenLine{Time: now.UTC().Truncate(time.Millisecond), Event: string(ev.Type), ResourceID: ev.ResourceKey(),
		UnknownType: ev.UnknownType, UnknownStatus: ev.UnknownStatus, WebhookID: in.ID, Attempt: in.Attempt,
		HTTPStatus: status, Data: ev.Raw}
	if ev.Media != nil {
		l.Status, l.Message = string(ev.Media.Status), ev.Media.Message
	}
	if ev.Live != nil {
		l.VideoID = ev.Live.VideoID
	}
	if ev.Operational != nil { // kinehook's own endpoint.disabled / endpoint.recovered
		l.Message = ev.Operational.Reason
	}
	return l
}

// text renders the line for people: type, resource id, status, then details.
func (l listenLine) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s id=%s", l.Time.Format("15:04:05"), l.Event, l.ResourceID)
	if l.Status != "" {
		fmt.Fprintf(&b, " status=%s", l.Status)
	}
	if l.VideoID != "" {
		fmt.Fprintf(&b, " video_id=%s", l.VideoID)
	}
	if l.Message != "" {
		fmt.Fprintf(&b, " message=%q", l.Message)
	}
	if l.UnknownType {
		b.WriteString(" (unknown event type)")
	}
	if l.UnknownStatus {
		b.WriteString(" (unknown status)")
	}
	if l.WebhookID != "" {
		fmt.Fprintf(&b, " webhook-id=%s", l.WebhookID)
	}
	fmt.Fprintf(&b, " attempt=%d -> %d", l.Attempt, l.HTTPStatus)
	return b.String()
}

// listenForwarder passes verified requests on to the app.
type listenForwarder struct {
	url    string
	client *http.Client
}

// hopHeaders are not passed on: they describe one connection, not the request.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"}

func (f *listenForwarder) forward(ctx context.Context, in *kinehook.Incoming) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(in.Body))
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	req.Header = in.Header.Clone()
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		in.Reply(http.StatusBadGateway, http.Header{"Content-Type": {"application/json"}},
			fmt.Appendf(nil, `{"error":{"code":"bad_gateway","message":%q}}`, "forward to "+f.url+": "+err.Error()))
		return fmt.Errorf("forward to %s: %w", f.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("forward to %s: read answer: %w", f.url, err)
	}
	in.Reply(resp.StatusCode, resp.Header, body)
	return nil
}

func parseBasicAuth(s string) (*kinehook.BasicAuth, error) {
	if s == "" {
		return nil, nil
	}
	login, password, ok := strings.Cut(s, ":")
	if !ok || login == "" {
		return nil, errors.New("--basic-auth: want LOGIN:PASSWORD")
	}
	return &kinehook.BasicAuth{Login: login, Password: password}, nil
}

// runListen serves until ctx ends.
func runListen(ctx context.Context, o *listenOptions, stdout, stderr io.Writer) error {
	basic, err := parseBasicAuth(o.basicAuth)
	if err != nil {
		return err
	}
	for _, s := range o.secrets {
		if strings.HasPrefix(s, kinehook.PublicKeyPrefix) {
			return fmt.Errorf("--secret %s...: that is a public key; pass it with --public-key", s[:8])
		}
	}
	out := &listenPrinter{stdout: stdout, stderr: stderr, json: o.json}
	opts, err := listenHandlerOptions(o, basic, out)
	if err != nil {
		return err
	}
	h, err := kinehook.NewHandler(opts)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	out.printf(stderr, "kinehook listen: listening on http://%s (any path)\n", ln.Addr())
	if len(o.secrets)+len(o.publicKeys) == 0 && basic == nil {
		out.printf(stderr, "kinehook listen: warning: no --secret, --public-key or --basic-auth given; accepting unsigned requests from anyone\n")
	}
	if o.forwardTo != "" {
		out.printf(stderr, "kinehook listen: forwarding verified requests to %s\n", o.forwardTo)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("listen: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("listen: shutdown: %w", err)
	}
	return nil
}

// listenHandlerOptions are the receiver Handler's options from listen's
// flags: its credentials, the forwarder of --forward-to, and out's report
// of every request.
func listenHandlerOptions(o *listenOptions, basic *kinehook.BasicAuth, out *listenPrinter) (kinehook.HandlerOptions, error) {
	opts := kinehook.HandlerOptions{
		Secrets:              o.secrets,
		PublicKeys:           o.publicKeys,
		BasicAuth:            basic,
		AllowUnauthenticated: true,
		Logger:               slog.New(slog.DiscardHandler),
		OnResult:             out.result,
	}
	if o.forwardTo == "" {
		return opts, nil
	}
	if !strings.HasPrefix(o.forwardTo, "http://") && !strings.HasPrefix(o.forwardTo, "https://") {
		return opts, fmt.Errorf("--forward-to %q: want an http:// or https:// URL", o.forwardTo)
	}
	fw := &listenForwarder{url: o.forwardTo, client: &http.Client{
		// No Accept-Encoding of its own: the app sees the sender's
		// headers, and answers the way the sender asked.
		Transport:     &http.Transport{DisableCompression: true, Proxy: nil},
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	opts.OnEvent = fw.forward
	return opts, nil
}

// listenPrinter writes listen's lines: events on stdout, notes on stderr,
// one whole line at a time.
type listenPrinter struct {
	mu             sync.Mutex // serialises output lines
	stdout, stderr io.Writer
	json           bool
}

// printf writes one line to w.
func (p *listenPrinter) printf(w io.Writer, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(w, format, args...)
}

// result reports one request: an event line, a duplicate or a refusal.
func (p *listenPrinter) result(r kinehook.Result) {
	in := r.Incoming
	switch {
	case in != nil && r.Duplicate:
		p.printf(p.stderr, "duplicate %s %s (%s) answered %d without handling it again\n", in.Event.Type, in.Event.ResourceKey(), in.DedupKey, r.Status)
	case in != nil:
		line := listenLineOf(in, r.Status, time.Now())
		if p.json {
			b, _ := json.Marshal(line)
			p.printf(p.stdout, "%s\n", b)
		} else {
			p.printf(p.stdout, "%s\n", line.text())
		}
		if r.Err != nil {
			p.printf(p.stderr, "%s %s: %v\n", in.Event.Type, in.Event.ResourceKey(), r.Err)
		}
	default:
		id := "(none)"
		if r.WebhookID != "" {
			id = listenQuote(r.WebhookID)
		}
		p.printf(p.stderr, "refused: %s %s webhook-id=%s: %d %s: %v\n", listenQuote(r.Method), listenQuote(r.Path), id, r.Status, r.Code, r.Err)
	}
}

// listenQuote prints a value taken from a request on one terminal line: as
// is when it is short printable ASCII without spaces, else quoted (so a
// path cannot forge output lines), and cut at 200 bytes.
func listenQuote(s string) string {
	const limit = 200
	cut := ""
	if len(s) > limit {
		s, cut = s[:limit], "..."
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f || s[i] == '"' {
			return strconv.Quote(s) + cut
		}
	}
	return s + cut
}
