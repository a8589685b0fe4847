package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kinehook/kinehook/client"
)

// defaultAPIURL is where `kinehook serve` listens by default.
const defaultAPIURL = "http://127.0.0.1:8080"

// apiOptions are the flags every command over the API shares: where the
// server is, the key, the project and the output format.
type apiOptions struct {
	url     string
	server  string
	key     string
	project string
	json    bool
	timeout time.Duration
	// withProject is true for groups whose routes live under a project.
	withProject bool
}

// register adds the shared flags to a command group as persistent flags.
func (o *apiOptions) register(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&o.url, "url", "", "server URL (env KINEHOOK_URL, then `kinehook config`, default "+defaultAPIURL+")")
	f.StringVar(&o.server, "server", "", "server URL, same as --url (for commands where --url names an endpoint)")
	f.StringVar(&o.key, "key", "", "API key: the admin key or a project key (env KINEHOOK_API_KEY, then `kinehook config`)")
	f.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit of each API request")
	if o.withProject {
		f.StringVar(&o.project, "project", "", "project id (env KINEHOOK_PROJECT; may be left out with a project key, or when the admin key sees a single project)")
	}
}

// client returns an API client from the flags, falling back on the
// environment, then on the settings file (kinehook config).
func (o *apiOptions) client() (*client.Client, error) {
	cfg, path, err := loadConfig()
	if err != nil {
		return nil, err
	}
	u := firstSet(o.server, o.url, os.Getenv("KINEHOOK_URL"), cfg.URL, defaultAPIURL)
	if err := checkServerURL(u); err != nil {
		return nil, err
	}
	key := firstSet(o.key, os.Getenv("KINEHOOK_API_KEY"), cfg.Key)
	if key == "" {
		return nil, fmt.Errorf("no API key: pass --key, set KINEHOOK_API_KEY or run `kinehook config set key KEY` (it is saved in %s): the admin key printed by `kinehook serve`, or a project key from `kinehook projects create`", path)
	}
	if o.project == "" && os.Getenv("KINEHOOK_PROJECT") == "" {
		o.project = cfg.Project
	}
	return client.New(u, key,
		client.WithHTTPClient(&http.Client{Timeout: o.timeout}),
		client.WithUserAgent("kinehook-cli/1"),
	), nil
}

// firstSet returns the first non-empty value.
func firstSet(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// projectID resolves the project: --project, then KINEHOOK_PROJECT, then, when
// the key lists exactly one project (always so for a project key, which sees
// only its own), that one.
func (o *apiOptions) projectID(ctx context.Context, c *client.Client) (string, error) {
	if o.project != "" {
		return o.project, nil
	}
	if p := os.Getenv("KINEHOOK_PROJECT"); p != "" {
		return p, nil
	}
	how := "pass --project or set KINEHOOK_PROJECT"
	if !o.withProject {
		how = "give the project id as the argument or set KINEHOOK_PROJECT"
	}
	ps, err := c.ListProjects(ctx)
	switch {
	case client.ErrorCode(err) == "forbidden":
		return "", fmt.Errorf("no project: %s (the id was printed by `kinehook projects create`)", how)
	case err != nil:
		return "", fmt.Errorf("no project given, and listing projects failed: %w", err)
	case len(ps) == 0:
		return "", errors.New("no project yet: create one with `kinehook projects create NAME`")
	case len(ps) > 1:
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID + " (" + p.Name + ")"
		}
		return "", fmt.Errorf("several projects: %s to one of %s", how, strings.Join(ids, ", "))
	}
	return ps[0].ID, nil
}

// setup returns the client and, for project groups, the project id.
func (o *apiOptions) setup(cmd *cobra.Command) (*client.Client, string, error) {
	c, err := o.client()
	if err != nil {
		return nil, "", err
	}
	if !o.withProject {
		return c, "", nil
	}
	pid, err := o.projectID(cmd.Context(), c)
	if err != nil {
		return nil, "", err
	}
	return c, pid, nil
}

// apiGroup makes cmd a command group: with no argument it prints its help, and
// with one it fails (exit status 1) naming the unknown subcommand and listing
// the valid ones, as cobra does for the top-level command. Without this cobra
// prints the group's help and exits 0 on a mistyped subcommand. It returns cmd.
func apiGroup(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return unknownSubcommand(cmd, args[0])
	}
	return cmd
}

// unknownSubcommand is the error for `GROUP NAME` when NAME is no subcommand of GROUP.
func unknownSubcommand(cmd *cobra.Command, name string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default for the top level
	}
	if sugg := cmd.SuggestionsFor(name); len(sugg) > 0 {
		fmt.Fprintf(&b, "\n\nDid you mean this?\n\t%s", strings.Join(sugg, "\n\t"))
	}
	var valid []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			valid = append(valid, sub.Name())
		}
	}
	fmt.Fprintf(&b, "\n\nValid commands of %s: %s\nRun '%s --help' for usage.", cmd.CommandPath(), strings.Join(valid, ", "), cmd.CommandPath())
	return errors.New(b.String())
}

// apiAnswers records the API's answers to the requests made under the context
// it returns, so that --json prints the API's JSON exactly as it came, not the
// client's typed structs re-encoded (which would add, drop or change keys).
type apiAnswers struct {
	bodies [][]byte
}

// recordAnswers returns a context recording the API's answers into a.
func recordAnswers(ctx context.Context) (context.Context, *apiAnswers) {
	a := &apiAnswers{}
	return client.WithResponseHook(ctx, func(r *client.Response) {
		a.bodies = append(a.bodies, r.Body)
	}), a
}

// show prints the answer of a command's request: the API's own JSON with
// --json, what text writes otherwise.
func (o *apiOptions) show(cmd *cobra.Command, ans *apiAnswers, text func(w io.Writer) error) error {
	if o.json {
		return ans.print(cmd.OutOrStdout())
	}
	return text(cmd.OutOrStdout())
}

// setIfChanged points *dst at v when the flag name was given on the command
// line: the PATCH bodies send only what the user set.
func setIfChanged[T any](fl *pflag.FlagSet, name string, dst **T, v *T) {
	if fl.Changed(name) {
		*dst = v
	}
}

// apiCall is the RunE of a command that makes one API call (call, which
// names what failed in its error) and prints the answer: the API's own JSON
// with --json, show's text otherwise.
func apiCall[T any](o *apiOptions, call func(ctx context.Context, c *client.Client, pid string, args []string) (T, error), show func(w io.Writer, v T) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, pid, err := o.setup(cmd)
		if err != nil {
			return err
		}
		ctx, ans := recordAnswers(cmd.Context())
		v, err := call(ctx, c, pid, args)
		if err != nil {
			return err
		}
		if o.json {
			return ans.print(cmd.OutOrStdout())
		}
		return show(cmd.OutOrStdout(), v)
	}
}

// print writes the body of the first answer recorded (the command's request)
// indented: the same JSON value as the API's.
func (a *apiAnswers) print(w io.Writer) error {
	if len(a.bodies) == 0 || len(bytes.TrimSpace(a.bodies[0])) == 0 {
		return errors.New("the API answered without a JSON body")
	}
	return apiPrintRaw(w, a.bodies[0])
}

// printPages writes the recorded pages of a paged list ({"data": [...],
// "next_cursor": ...}) as one: every page's data in order, and the last page's
// other keys.
func (a *apiAnswers) printPages(w io.Writer) error {
	if len(a.bodies) == 0 {
		return errors.New("the API answered without a JSON body")
	}
	var last map[string]json.RawMessage
	data := []json.RawMessage{}
	for _, body := range a.bodies {
		var page map[string]json.RawMessage
		if err := json.Unmarshal(body, &page); err != nil {
			return fmt.Errorf("read a page of the answer: %w", err)
		}
		var items []json.RawMessage
		if raw := page["data"]; len(raw) > 0 {
			if err := json.Unmarshal(raw, &items); err != nil {
				return fmt.Errorf("read a page of the answer: data: %w", err)
			}
		}
		data = append(data, items...)
		last = page
	}
	// Without HTML escaping: the items' escapes stay as the API sent them.
	all, err := marshalNoEscape(data)
	if err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	last["data"] = all
	merged, err := marshalNoEscape(last)
	if err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return apiPrintRaw(w, merged)
}

// marshalNoEscape is json.Marshal without HTML escaping (json.RawMessage
// values are still compacted, their escapes kept).
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// apiPrintRaw writes the JSON document body indented, keys, values and
// escapes as they are.
func apiPrintRaw(w io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(body), "", "  "); err != nil {
		return fmt.Errorf("the API's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// apiPrintJSON writes v as indented JSON.
func apiPrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// apiTable writes rows as aligned columns under header.
func apiTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// apiFields writes label/value pairs, one per line, values aligned.
func apiFields(w io.Writer, pairs [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, p := range pairs {
		fmt.Fprintf(tw, "%s:\t%s\n", p[0], p[1])
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// apiTime formats a time for tables ("-" when zero).
func apiTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// apiOr returns s, or "-" when it is empty.
func apiOr(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseSince reads a time given as RFC 3339 ("2026-01-02T15:04:05Z"), a date
// ("2026-01-02", midnight UTC) or a duration back from now ("2h", "30m").
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration back from now (2h)", s)
}

// parseHeaders reads K=V pairs into a map.
func parseHeaders(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want NAME=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// newRemoveCmd builds a command that removes one thing of the project by
// its id (delete, revoke): call does it; the line says "<verb> <noun> ID",
// and --json prints asJSON(id), since the API answers 204 with no body of
// its own.
func newRemoveCmd(o *apiOptions, use, short, verb, noun string,
	call func(c *client.Client, ctx context.Context, pid, id string) error, asJSON func(id string) any) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			if err := call(c, cmd.Context(), pid, args[0]); err != nil {
				return fmt.Errorf("%s %s %s: %w", strings.TrimSuffix(verb, "d"), noun, args[0], err)
			}
			if o.json {
				return apiPrintJSON(cmd.OutOrStdout(), asJSON(args[0]))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s %s\n", verb, noun, args[0])
			return nil
		},
	}
}
