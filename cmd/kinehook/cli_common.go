package main

import (
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
	f.StringVar(&o.url, "url", "", "server URL (env KINEHOOK_URL, default "+defaultAPIURL+")")
	f.StringVar(&o.server, "server", "", "server URL, same as --url (for commands where --url names an endpoint)")
	f.StringVar(&o.key, "key", "", "API key: the admin key or a project key (env KINEHOOK_API_KEY)")
	f.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "time limit of each API request")
	if o.withProject {
		f.StringVar(&o.project, "project", "", "project id (env KINEHOOK_PROJECT; may be left out with a project key, or when the admin key sees a single project)")
	}
}

// client returns an API client from the flags, falling back on the environment.
func (o *apiOptions) client() (*client.Client, error) {
	u := o.server
	if u == "" {
		u = o.url
	}
	if u == "" {
		u = os.Getenv("KINEHOOK_URL")
	}
	if u == "" {
		u = defaultAPIURL
	}
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return nil, fmt.Errorf("--url %q: want an http:// or https:// URL", u)
	}
	key := o.key
	if key == "" {
		key = os.Getenv("KINEHOOK_API_KEY")
	}
	if key == "" {
		return nil, errors.New("no API key: pass --key or set KINEHOOK_API_KEY (the admin key printed by `kinehook serve`, or a project key from `kinehook projects create`)")
	}
	return client.New(u, key,
		client.WithHTTPClient(&http.Client{Timeout: o.timeout}),
		client.WithUserAgent("kinehook-cli/1"),
	), nil
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
	ps, err := c.ListProjects(ctx)
	switch {
	case client.ErrorCode(err) == "forbidden":
		return "", errors.New("no project: pass --project or set KINEHOOK_PROJECT (the id was printed by `kinehook projects create`)")
	case err != nil:
		return "", fmt.Errorf("no --project given, and listing projects failed: %w", err)
	case len(ps) == 0:
		return "", errors.New("no project yet: create one with `kinehook projects create NAME`")
	case len(ps) > 1:
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID + " (" + p.Name + ")"
		}
		return "", fmt.Errorf("several projects: pass --project or set KINEHOOK_PROJECT to one of %s", strings.Join(ids, ", "))
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
