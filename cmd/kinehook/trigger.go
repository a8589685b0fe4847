package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func init() { rootCmd.AddCommand(newTriggerCmd()) }

// triggerOptions are the flags of `kinehook trigger`.
type triggerOptions struct {
	url       string
	secrets   []string
	data      string
	count     int
	basicAuth string
	headers   []string
	id        string
	json      bool
	timeout   time.Duration

	// Server mode (--server): post through the server's API.
	server  string
	key     string
	project string
}

func newTriggerCmd() *cobra.Command {
	o := &triggerOptions{}
	types := make([]string, len(kinehook.EventTypes))
	for i, t := range kinehook.EventTypes {
		types[i] = string(t)
	}
	cmd := &cobra.Command{
		Use:   "trigger TYPE (--url URL | --server URL)",
		Short: "Send a correctly signed sample event to a URL and print the answer",
		Long: `trigger POSTs a sample of the event type TYPE to --url, as kinehook's sender
would: with webhook-id, webhook-timestamp and, for each --secret, a
webhook-signature entry (v1 for whsec_ secrets, v1a for whsk_ private keys).
The body is the Kinescope documentation's example for TYPE unless --data
gives another. It prints one line per request with the answer's status and
body, and fails when an answer is not 2xx.

With --server (instead of --url), trigger posts the event through a
kinehook server's API (POST /v1/projects/{pid}/events with --key): the whole
pipeline, its delivery log and retries, to every endpoint of the project,
kinehook listen --server included. It prints one line per event (time,
type, resource, event id, status, latency).

Event types: ` + strings.Join(types, ", "),
		Example: `  kinehook trigger media.update.status --url http://127.0.0.1:8787/ --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  kinehook trigger media.update.status --url http://127.0.0.1:8787/ --data '{"id":"v1","status":"error","message":"codec"}'
  kinehook trigger live.finished --url http://127.0.0.1:8787/ --basic-auth kinescope:s3cret --count 3
  kinehook trigger media.update.status --server http://127.0.0.1:8080 --key kh_...`,
		Args:          cobra.ExactArgs(1),
		ValidArgs:     types,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.server != "" {
				return runTriggerServer(cmd, o, kinehook.EventType(args[0]))
			}
			if o.url == "" {
				return errors.New(`required flag(s) "url" not set (or post through a server with --server URL --key KEY)`)
			}
			return runTrigger(cmd, o, kinehook.EventType(args[0]))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "where to POST (required)")
	f.StringArrayVar(&o.secrets, "secret", nil, "whsec_ secret or whsk_ private key to sign with (repeatable; none sends unsigned)")
	f.StringVar(&o.data, "data", "", `body to send instead of the sample: a whole {"event","data"} body or just the data object; @FILE reads a file`)
	f.IntVar(&o.count, "count", 1, "how many events to send")
	f.StringVar(&o.basicAuth, "basic-auth", "", "LOGIN:PASSWORD to send as HTTP Basic Auth (as Kinescope does)")
	f.StringArrayVar(&o.headers, "header", nil, `extra request header "Name: value" (repeatable)`)
	f.StringVar(&o.id, "id", "", "webhook-id to use for every request (default: a new msg_ id each); repeating one tests de-duplication")
	f.BoolVar(&o.json, "json", false, "print one JSON object per request")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit of each request")
	f.StringVar(&o.server, "server", "", "URL of a kinehook server to post the event through (instead of --url)")
	f.StringVar(&o.key, "key", "", "with --server: a project key allowed to post events, or the admin key (env KINEHOOK_API_KEY, then `kinehook config`)")
	f.StringVar(&o.project, "project", "", "with --server: project id (default: the key's own; env KINEHOOK_PROJECT)")
	return cmd
}

// triggerBody returns the body to send for t.
func triggerBody(t kinehook.EventType, data string) ([]byte, error) {
	if data == "" {
		body := kinehook.SampleEvent(t)
		if body == nil {
			return nil, fmt.Errorf("%q is not a catalog event type (want one of %v); give a body with --data to send it anyway", t, kinehook.EventTypes)
		}
		return body, nil
	}
	raw := []byte(data)
	if name, ok := strings.CutPrefix(data, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		raw = b
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("--data is not a JSON object: %w", err)
	}
	if ev, ok := obj["event"]; ok {
		if _, ok := obj["data"]; ok {
			var name string
			if json.Unmarshal(ev, &name) != nil || kinehook.EventType(name) != t {
				return nil, fmt.Errorf("--data has event %s but TYPE is %s", ev, t)
			}
			return bytes.TrimSpace(raw), nil
		}
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	return json.Marshal(kinehook.Envelope{Event: t, Data: b.Bytes()})
}

// triggerHeaders parses --header values. The webhook-* headers are the
// signature's: set after signing they would send a request other than the
// one reported (and signed), so they are refused in favour of --id/--secret.
func triggerHeaders(kvs []string) (http.Header, error) {
	h := http.Header{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--header %q: want \"Name: value\"", kv)
		}
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(k)), "webhook-") {
			return nil, fmt.Errorf("--header %q: the webhook-* headers are made by trigger; set the id with --id and the signing keys with --secret", kv)
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return h, nil
}

// triggerResult is the --json form of one request's outcome.
type triggerResult struct {
	Event     string          `json:"event"`
	WebhookID string          `json:"webhook_id"`
	Status    int             `json:"status"`
	Body      json.RawMessage `json:"body,omitempty"`
	BodyText  string          `json:"body_text,omitempty"`
	Error     string          `json:"error,omitempty"`
}

// runTrigger sends --count signed requests of event type t to --url and
// prints each answer; it fails when any was not answered 2xx.
func runTrigger(cmd *cobra.Command, o *triggerOptions, t kinehook.EventType) error {
	req, err := prepareTrigger(o, t, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	client := &http.Client{
		Timeout:       o.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	failed := 0
	for range o.count {
		if !triggerOnce(cmd, client, o, t, req) {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d requests were not answered 2xx", failed, o.count)
	}
	return nil
}

// triggerRequest is what every request of one trigger sends.
type triggerRequest struct {
	body  []byte
	basic *kinehook.BasicAuth
	extra http.Header
}

// prepareTrigger checks trigger's flags and builds the request's body and
// headers (warning on errOut about a body Kinescope would not send).
func prepareTrigger(o *triggerOptions, t kinehook.EventType, errOut io.Writer) (*triggerRequest, error) {
	if !strings.HasPrefix(o.url, "http://") && !strings.HasPrefix(o.url, "https://") {
		return nil, fmt.Errorf("--url %q: want an http:// or https:// URL", o.url)
	}
	if o.count < 1 {
		return nil, errors.New("--count must be at least 1")
	}
	body, err := triggerBody(t, o.data)
	if err != nil {
		return nil, err
	}
	if _, err := kinehook.ParseStrict(body); err != nil {
		fmt.Fprintf(errOut, "warning: sending a body Kinescope would not send: %v\n", err)
	}
	basic, err := parseBasicAuth(o.basicAuth)
	if err != nil {
		return nil, err
	}
	extra, err := triggerHeaders(o.headers)
	if err != nil {
		return nil, err
	}
	for _, s := range o.secrets {
		if _, err := kinehook.Sign([]string{s}, "msg_check", time.Now(), nil); err != nil {
			return nil, fmt.Errorf("--secret: %w", err)
		}
	}
	return &triggerRequest{body: body, basic: basic, extra: extra}, nil
}

// triggerOnce sends one request and prints its outcome; false when it was
// not answered 2xx.
func triggerOnce(cmd *cobra.Command, client *http.Client, o *triggerOptions, t kinehook.EventType, r *triggerRequest) bool {
	out := cmd.OutOrStdout()
	id := o.id
	if id == "" {
		id = kinehook.NewID(kinehook.PrefixEvent)
	}
	res := triggerResult{Event: string(t), WebhookID: id}
	status, answer, err := triggerSend(cmd, client, o, r.body, id, r.basic, r.extra)
	res.Status = status
	switch {
	case err != nil:
		res.Error = err.Error()
	case json.Valid(answer):
		res.Body = json.RawMessage(bytes.TrimSpace(answer))
	default:
		res.BodyText = string(answer)
	}
	ok := err == nil && status >= 200 && status <= 299
	switch {
	case o.json:
		b, _ := json.Marshal(res)
		fmt.Fprintf(out, "%s\n", b)
	case err != nil:
		fmt.Fprintf(out, "%s webhook-id=%s -> error: %v\n", t, id, err)
	default:
		fmt.Fprintf(out, "%s webhook-id=%s -> %d %s %s\n", t, id, status, http.StatusText(status), strings.TrimSpace(string(answer)))
	}
	return ok
}

// triggerSend makes one request and returns the answer's status and body.
func triggerSend(cmd *cobra.Command, client *http.Client, o *triggerOptions, body []byte, id string, basic *kinehook.BasicAuth, extra http.Header) (int, []byte, error) {
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, o.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kinehook-trigger")
	now := time.Now()
	if len(o.secrets) > 0 {
		if err := kinehook.SignRequest(req.Header, o.secrets, id, now, body); err != nil {
			return 0, nil, err
		}
	} else {
		req.Header.Set(kinehook.HeaderID, id)
		req.Header.Set(kinehook.HeaderTimestamp, fmt.Sprint(now.Unix()))
	}
	if basic != nil {
		req.SetBasicAuth(basic.Login, basic.Password)
	}
	for k, vs := range extra {
		req.Header[k] = vs
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("POST %s: %w", o.url, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, answer, nil
}

// runTriggerServer posts --count events of type t through the server's API
// and prints one line each; it fails when any was refused.
func runTriggerServer(cmd *cobra.Command, o *triggerOptions, t kinehook.EventType) error {
	if o.url != "" {
		return errors.New("give --url (straight to a receiver) or --server (through a kinehook server), not both")
	}
	for _, name := range []string{"secret", "basic-auth", "header", "id"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("--%s is for --url; with --server the server signs and sends", name)
		}
	}
	if o.count < 1 {
		return errors.New("--count must be at least 1")
	}
	body, err := triggerBody(t, o.data)
	if err != nil {
		return err
	}
	api := &apiOptions{server: o.server, key: o.key, project: o.project, withProject: true, timeout: o.timeout}
	c, err := api.client()
	if err != nil {
		return err
	}
	pid, err := api.projectID(cmd.Context(), c)
	if err != nil {
		return err
	}
	out := newEventPrinter(cmd.OutOrStdout(), o.json)
	failed := 0
	for range o.count {
		start := time.Now()
		ev, err := c.SendEventBody(cmd.Context(), pid, body, "")
		l := eventLine{Time: time.Now(), Event: string(t), Duration: time.Since(start)}
		switch {
		case err != nil:
			failed++
			l.Error = err.Error()
			var ae *client.Error
			if errors.As(err, &ae) {
				l.Status = ae.StatusCode
			}
		default:
			l.Status, l.Note, l.ID, l.Resource = http.StatusAccepted, "accepted", ev.ID, ev.ResourceKey
			if ev.Replayed {
				l.Note = "replayed"
			}
		}
		out.line(l)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d events were refused", failed, o.count)
	}
	return nil
}
