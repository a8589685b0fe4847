package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func init() { rootCmd.AddCommand(newEndpointsCmd()) }

// endpointFlags are the settable fields of an endpoint, shared by create and update.
type endpointFlags struct {
	url         string
	endpointURL string
	eventTypes  []string
	allEvents   bool
	description string
	headers     []string
	noHeaders   bool
	disabled    bool
	rateLimit   float64
	maxInFlight int
	secret      string
	typ         string
	config      string
	credentials []string
}

func (f *endpointFlags) register(cmd *cobra.Command, update bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.url, "url", "", "the endpoint's absolute http(s) URL (here --url names the endpoint; give the server with --server or KINEHOOK_URL)")
	fl.StringVar(&f.endpointURL, "endpoint-url", "", "the endpoint's URL; with it, --url names the server again")
	fl.StringArrayVar(&f.eventTypes, "event-type", nil, "deliver only this event type or prefix (live.*); repeat for several (default: every type)")
	fl.StringVar(&f.description, "description", "", "a note for humans")
	fl.StringArrayVar(&f.headers, "header", nil, "custom request header NAME=VALUE; repeat for several")
	fl.BoolVar(&f.disabled, "disabled", false, "create disabled / disable (--disabled=false enables)")
	fl.Float64Var(&f.rateLimit, "rate-limit", 0, "maximum deliveries per second (0 = unlimited)")
	fl.IntVar(&f.maxInFlight, "max-in-flight", 0, "maximum concurrent requests (0 = server default)")
	fl.StringVar(&f.secret, "secret", "", "signing secret whsec_... (default: generated)")
	fl.StringVar(&f.typ, "type", "", `endpoint type: "webhook" (default) or an event destination such as "nats"`)
	fl.StringVar(&f.config, "config", "", `a destination's settings as a JSON object, e.g. '{"url":"nats://host:4222","subject":"kinehook.events"}'`)
	fl.StringArrayVar(&f.credentials, "credential", nil, "a destination's credential NAME=VALUE (nats: user and password, or token); repeat for several; on update NAME= removes one")
	if update {
		fl.BoolVar(&f.allEvents, "all-events", false, "remove the event type filter: deliver every type")
		fl.BoolVar(&f.noHeaders, "clear-headers", false, "remove every custom header")
	}
}

// resolveURL sorts out what --url means: the endpoint's URL, unless the
// endpoint's URL came from arg or --endpoint-url, in which case --url is the
// server's (as in every other command). Afterwards f.url is the endpoint's URL.
func (f *endpointFlags) resolveURL(o *apiOptions, arg string) error {
	if arg != "" && f.endpointURL != "" {
		return fmt.Errorf("give the endpoint's URL once: as the argument or with --endpoint-url")
	}
	ep := arg
	if ep == "" {
		ep = f.endpointURL
	}
	if ep != "" {
		if f.url != "" {
			if o.server != "" {
				return fmt.Errorf("--url and --server both name the server: give one")
			}
			o.url = f.url
		}
		f.url = ep
	}
	return nil
}

// endpointPairs prints an endpoint as label/value lines.
func endpointPairs(e *client.Endpoint) [][2]string {
	types := "all"
	if len(e.EventTypes) > 0 {
		types = strings.Join(e.EventTypes, ", ")
	}
	state := "enabled"
	if e.Disabled {
		state = "disabled"
		if e.DisabledReason != "" {
			state += " (" + e.DisabledReason + ")"
		}
	}
	pairs := [][2]string{{"id", e.ID}, {"type", e.TypeOf()}}
	if e.TypeOf() == kinehook.EndpointWebhook {
		pairs = append(pairs, [2]string{"url", e.URL})
	} else {
		pairs = append(pairs, [2]string{"config", string(e.Config)})
		if len(e.Credentials) > 0 {
			pairs = append(pairs, [2]string{"credentials", strings.Join(kinehook.CredentialNames(e.Credentials), ", ") + " (values never shown)"})
		}
	}
	pairs = append(pairs, [2]string{"event_types", types}, [2]string{"description", apiOr(e.Description)}, [2]string{"state", state})
	for _, k := range slices.Sorted(maps.Keys(e.Headers)) {
		pairs = append(pairs, [2]string{"header", k + ": " + e.Headers[k]})
	}
	if e.RateLimit > 0 {
		pairs = append(pairs, [2]string{"rate_limit", strconv.FormatFloat(e.RateLimit, 'f', -1, 64) + "/s"})
	}
	if e.MaxInFlight > 0 {
		pairs = append(pairs, [2]string{"max_in_flight", strconv.Itoa(e.MaxInFlight)})
	}
	if !e.FailingSince.IsZero() {
		pairs = append(pairs, [2]string{"failing_since", apiTime(e.FailingSince)})
	}
	pairs = append(pairs, healthPairs(e.Health)...)
	if e.Secret != "" {
		pairs = append(pairs, [2]string{"secret", e.Secret})
	}
	pairs = append(pairs, [2]string{"created_at", apiTime(e.CreatedAt)}, [2]string{"updated_at", apiTime(e.UpdatedAt)})
	return pairs
}

// newEndpointsCmd builds `kinehook endpoints ...`: the group and its shared
// flags; each subcommand has its own builder below.
func newEndpointsCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:     "endpoints",
		Aliases: []string{"endpoint"},
		Short:   "Manage a project's endpoints (the URLs that receive events)",
	})
	o.register(cmd)
	cmd.AddCommand(newEndpointCreateCmd(o), newEndpointListCmd(o), newEndpointGetCmd(o),
		newEndpointUpdateCmd(o), newEndpointDeleteCmd(o), newEndpointSecretCmd(o),
		newEndpointRotateCmd(o), newEndpointRecoverCmd(o), newEndpointStatsCmd(o), newEndpointEnableCmd(o, true),
		newEndpointEnableCmd(o, false), newEndpointTestCmd(o))
	return cmd
}

// showEndpoint prints an endpoint: the API's JSON with --json, else label/value lines.
func showEndpoint(cmd *cobra.Command, o *apiOptions, ans *apiAnswers, e *client.Endpoint) error {
	return o.show(cmd, ans, func(w io.Writer) error { return apiFields(w, endpointPairs(e)) })
}

// showSecret prints a signing secret: the API's JSON with --json, else the secret alone.
func showSecret(cmd *cobra.Command, o *apiOptions, ans *apiAnswers, secret string) error {
	return o.show(cmd, ans, func(w io.Writer) error {
		fmt.Fprintln(w, secret)
		return nil
	})
}

// newEndpointCreateCmd builds `endpoints create`.
func newEndpointCreateCmd(o *apiOptions) *cobra.Command {
	cf := &endpointFlags{}
	create := &cobra.Command{
		Use:   "create --url ENDPOINT_URL | create ENDPOINT_URL | create --type TYPE --config JSON",
		Short: "Register an endpoint and print its signing secret",
		Long: "Register an endpoint and print its signing secret.\n\n" +
			"The endpoint's URL is the argument, --endpoint-url, or else --url; when it comes\n" +
			"from the argument or --endpoint-url, --url names the server as elsewhere.\n" +
			"The server can always be given with --server or KINEHOOK_URL.\n\n" +
			"An event destination (--type nats, ...) has no URL: its settings are --config\n" +
			"(a JSON object) and its secrets --credential NAME=VALUE, never shown again.",
		Example: `  KINEHOOK_URL=http://127.0.0.1:8080 kinehook endpoints create --project prj_... --url https://example.com/webhooks --event-type media.update.status
  kinehook endpoints create https://example.com/webhooks --url http://127.0.0.1:8080 --key kh_... --project prj_...
  kinehook endpoints create --project prj_... --type nats --config '{"url":"nats://nats.internal:4222","subject":"kinehook.events"}' --credential token=s3cret`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runEndpointCreate(cmd, o, cf, args) },
	}
	cf.register(create, false)
	return create
}

// runEndpointCreate registers the endpoint the flags (and the optional URL argument) describe.
func runEndpointCreate(cmd *cobra.Command, o *apiOptions, cf *endpointFlags, args []string) error {
	var arg string
	if len(args) == 1 {
		arg = args[0]
	}
	if err := cf.resolveURL(o, arg); err != nil {
		return err
	}
	dest := cf.typ != "" && cf.typ != kinehook.EndpointWebhook
	if cf.url == "" && !dest {
		return fmt.Errorf("the endpoint's URL is required: --url URL (or an argument); an event destination needs --type and --config instead")
	}
	if dest && cf.config == "" {
		return fmt.Errorf("a %s endpoint needs --config: its settings as a JSON object", cf.typ)
	}
	h, err := parseHeaders(cf.headers)
	if err != nil {
		return err
	}
	config, err := parseConfigFlag(cf.config)
	if err != nil {
		return err
	}
	creds, err := parseCredentials(cf.credentials)
	if err != nil {
		return err
	}
	c, pid, err := o.setup(cmd)
	if err != nil {
		return err
	}
	ctx, ans := recordAnswers(cmd.Context())
	e, err := c.CreateEndpoint(ctx, pid, client.EndpointCreate{
		URL: cf.url, EventTypes: cf.eventTypes, Description: cf.description, Headers: h,
		Disabled: cf.disabled, RateLimit: cf.rateLimit, MaxInFlight: cf.maxInFlight, Secret: cf.secret,
		Type: cf.typ, Credentials: creds, Config: config,
	})
	if err != nil {
		return fmt.Errorf("create endpoint: %w", err)
	}
	return showEndpoint(cmd, o, ans, e)
}

// newEndpointListCmd builds `endpoints list`.
func newEndpointListCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the project's endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			// Every page: the client follows next_cursor.
			es, err := c.ListEndpoints(ctx, pid)
			if err != nil {
				return fmt.Errorf("list endpoints: %w", err)
			}
			if o.json {
				return ans.printPages(cmd.OutOrStdout())
			}
			return apiTable(cmd.OutOrStdout(), []string{"ID", "URL", "EVENT_TYPES", "STATE", "CREATED", "TYPE"}, endpointRows(es))
		},
	}
}

// endpointRows are the rows of `endpoints list`: a destination shows its
// config where a webhook shows its URL.
func endpointRows(es []*client.Endpoint) [][]string {
	rows := make([][]string, 0, len(es))
	for _, e := range es {
		types := "all"
		if len(e.EventTypes) > 0 {
			types = strings.Join(e.EventTypes, ",")
		}
		target := e.URL
		switch e.TypeOf() {
		case kinehook.EndpointWebhook:
		case kinehook.EndpointCLI: // its config is the connection's state
			target = "kinehook listen (disconnected)"
			if kinehook.ParseListenerState(e.Config).Connected {
				target = "kinehook listen (connected)"
			}
		default:
			target = string(e.Config)
		}
		rows = append(rows, []string{e.ID, target, types, healthState(e), apiTime(e.CreatedAt), e.TypeOf()})
	}
	return rows
}

// newEndpointGetCmd builds `endpoints get`.
func newEndpointGetCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get ENDPOINT_ID",
		Short: "Show one endpoint",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			e, err := c.GetEndpoint(ctx, pid, args[0])
			if err != nil {
				return fmt.Errorf("get endpoint %s: %w", args[0], err)
			}
			return showEndpoint(cmd, o, ans, e)
		},
	}
}

// newEndpointUpdateCmd builds `endpoints update`.
func newEndpointUpdateCmd(o *apiOptions) *cobra.Command {
	uf := &endpointFlags{}
	update := &cobra.Command{
		Use:   "update ENDPOINT_ID [flags]",
		Short: "Change an endpoint: only the flags given change",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := uf.resolveURL(o, ""); err != nil {
				return err
			}
			u, err := uf.changes(cmd.Flags())
			if err != nil {
				return err
			}
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			e, err := c.UpdateEndpoint(ctx, pid, args[0], u)
			if err != nil {
				return fmt.Errorf("update endpoint %s: %w", args[0], err)
			}
			return showEndpoint(cmd, o, ans, e)
		},
	}
	uf.register(update, true)
	return update
}

// changes is the update the flags given ask for (f.url already resolved):
// only the flags set on the command line change.
func (f *endpointFlags) changes(fl *pflag.FlagSet) (client.EndpointUpdate, error) {
	var u client.EndpointUpdate
	if fl.Changed("event-type") && f.allEvents {
		return u, fmt.Errorf("--event-type and --all-events exclude each other")
	}
	if fl.Changed("header") && f.noHeaders {
		return u, fmt.Errorf("--header and --clear-headers exclude each other")
	}
	if f.url != "" {
		u.URL = &f.url
	}
	if fl.Changed("event-type") {
		u.EventTypes = &f.eventTypes
	}
	if f.allEvents {
		u.EventTypes = client.Ptr([]string{})
	}
	if err := f.headerChange(fl, &u); err != nil {
		return u, err
	}
	setIfChanged(fl, "description", &u.Description, &f.description)
	setIfChanged(fl, "disabled", &u.Disabled, &f.disabled)
	setIfChanged(fl, "rate-limit", &u.RateLimit, &f.rateLimit)
	setIfChanged(fl, "max-in-flight", &u.MaxInFlight, &f.maxInFlight)
	setIfChanged(fl, "secret", &u.Secret, &f.secret)
	setIfChanged(fl, "type", &u.Type, &f.typ)
	if fl.Changed("config") {
		c, err := parseConfigFlag(f.config)
		if err != nil {
			return u, err
		}
		u.Config = &c
	}
	if fl.Changed("credential") {
		c, err := parseCredentials(f.credentials)
		if err != nil {
			return u, err
		}
		u.Credentials = &c
	}
	if u == (client.EndpointUpdate{}) {
		return u, fmt.Errorf("nothing to change: give at least one of --url, --type, --config, --credential, --event-type, --all-events, --description, --header, --clear-headers, --disabled, --rate-limit, --max-in-flight, --secret")
	}
	return u, nil
}

// parseConfigFlag reads --config: a JSON object, sent as given (nil when
// the flag is empty); the server checks it against the endpoint's type.
func parseConfigFlag(s string) (json.RawMessage, error) {
	if s == "" {
		return nil, nil
	}
	if !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("--config %q is not valid JSON; give an object such as '{\"url\":\"nats://host:4222\",\"subject\":\"events\"}'", s)
	}
	return json.RawMessage(s), nil
}

// parseCredentials reads --credential NAME=VALUE flags; "NAME=" (an empty
// value) removes that credential on update.
func parseCredentials(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--credential %q: want NAME=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// headerChange sets u.Headers from --header or --clear-headers, if given.
func (f *endpointFlags) headerChange(fl *pflag.FlagSet, u *client.EndpointUpdate) error {
	if fl.Changed("header") {
		h, err := parseHeaders(f.headers)
		if err != nil {
			return err
		}
		u.Headers = &h
	}
	if f.noHeaders {
		u.Headers = client.Ptr(map[string]string{})
	}
	return nil
}

// newEndpointDeleteCmd builds `endpoints delete`.
func newEndpointDeleteCmd(o *apiOptions) *cobra.Command {
	return newRemoveCmd(o, "delete ENDPOINT_ID", "Delete an endpoint (its open deliveries become failed)", "deleted", "endpoint",
		(*client.Client).DeleteEndpoint, func(id string) any { return map[string]any{"id": id, "deleted": true} })
}

// newEndpointSecretCmd builds `endpoints secret`.
func newEndpointSecretCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "secret ENDPOINT_ID",
		Short: "Print the endpoint's signing secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			s, err := c.EndpointSecret(ctx, pid, args[0])
			if err != nil {
				return fmt.Errorf("get secret of endpoint %s: %w", args[0], err)
			}
			return showSecret(cmd, o, ans, s)
		},
	}
}

// newEndpointRotateCmd builds `endpoints rotate`.
func newEndpointRotateCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate ENDPOINT_ID",
		Short: "Make a new signing secret (the old one keeps signing beside it for 24 h)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			s, err := c.RotateEndpointSecret(ctx, pid, args[0])
			if err != nil {
				return fmt.Errorf("rotate secret of endpoint %s: %w", args[0], err)
			}
			return showSecret(cmd, o, ans, s)
		},
	}
}

// newEndpointRecoverCmd builds `endpoints recover`.
func newEndpointRecoverCmd(o *apiOptions) *cobra.Command {
	var since string
	recoverCmd := &cobra.Command{
		Use:   "recover ENDPOINT_ID --since TIME",
		Short: "Send again the endpoint's deliveries that failed since TIME",
		Long: "Send again the endpoint's failed deliveries created since TIME: RFC 3339\n" +
			"(2026-01-02T15:04:05Z), a date (2026-01-02) or a duration back from now (2h).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if since == "" {
				return fmt.Errorf("--since is required")
			}
			t, err := parseSince(since, time.Now())
			if err != nil {
				return fmt.Errorf("--since: %w", err)
			}
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			r, err := c.RecoverEndpoint(ctx, pid, args[0], t)
			if err != nil {
				return fmt.Errorf("recover endpoint %s: %w", args[0], err)
			}
			return o.show(cmd, ans, func(w io.Writer) error {
				fmt.Fprintf(w, "re-sending %d failed deliveries of %s since %s\n", r.Recovered, args[0], apiTime(t))
				return nil
			})
		},
	}
	recoverCmd.Flags().StringVar(&since, "since", "", "re-send failures since this time (RFC 3339, a date, or a duration like 2h)")
	return recoverCmd
}
