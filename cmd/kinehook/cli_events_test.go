package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func TestReadBatchFile(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		items []string // the events as sent
		lines []int    // nil: a {"events": [...]} body
		err   string   // when not empty, the error must contain it
	}{
		{name: "body, items kept byte for byte", in: `{"events":[{"event":"a","data":{"x": 1}} , {"event":"b","data":{}}]}`,
			items: []string{`{"event":"a","data":{"x": 1}}`, `{"event":"b","data":{}}`}},
		{name: "indented body", in: "\n{\n  \"events\": [\n    {\"event\": \"a\"}\n  ]\n}\n", items: []string{`{"event": "a"}`}},
		{name: "JSON Lines, CRLF, blank lines skipped", in: "{\"event\":\"a\"}\r\n\r\n  {\"event\":\"b\"}  \n",
			items: []string{`{"event":"a"}`, `{"event":"b"}`}, lines: []int{1, 3}},
		{name: "one event on one line", in: `{"event":"a","data":{}}`, items: []string{`{"event":"a","data":{}}`}, lines: []int{1}},
		{name: "one event over several lines", in: "\n\n{\n  \"event\": \"a\"\n}\n", items: []string{"{\n  \"event\": \"a\"\n}"}, lines: []int{3}},

		{name: "empty", in: "", err: "no events in the file"},
		{name: "blank", in: " \n\n", err: "no events in the file"},
		{name: "array", in: `[{"event":"a"}]`, err: "a JSON array is not a batch file"},
		{name: "body without events", in: `{"events":[]}`, err: "no events in the file"},
		{name: "events not an array", in: `{"events":{}}`, err: "events must be an array of events"},
		{name: "events null", in: `{"events":null}`, err: "events must be an array of events"},
		{name: "unknown top-level key", in: `{"events":[{}],"x":1}`, err: `unknown key "x"`},
		{name: "events twice", in: `{"events":[{}],"events":[{}]}`, err: `the key "events" is given twice`},
		{name: "body item not an object", in: `{"events":[{},"x"]}`, err: "events[1]: not a JSON object"},
		{name: "body item with a key twice", in: `{"events":[{},{"data":{},"data":{}}]}`, err: `events[1]: the key "data" is given twice`},
		{name: "line not JSON", in: "{\"event\":\"a\"}\n{\"event\":", err: "line 2: not JSON"},
		{name: "line not an object", in: "{\"event\":\"a\"}\n\n7\n", err: "line 3: not a JSON object"},
		{name: "line with a nested key twice", in: "{\"data\":{\"k\":1,\"k\":2}}\n{}", err: `line 1: the key "k" is given twice`},
		{name: "line not UTF-8", in: "{}\n{\"data\":{\"id\":\"\xff\"}}", err: "line 2: not UTF-8"},
		{name: "line with a lone surrogate", in: `{"data":{"id":"\ud800"}}` + "\n{}", err: `line 1: an unpaired \u surrogate escape`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := readBatchFile([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var items []string
			for _, it := range f.items {
				items = append(items, string(it))
			}
			if !slices.Equal(items, tc.items) || !slices.Equal(f.lines, tc.lines) || (f.lines == nil) != (tc.lines == nil) {
				t.Fatalf("items %q lines %v, want %q lines %v", items, f.lines, tc.items, tc.lines)
			}
		})
	}
}

func TestBatchBodyAndEventIndex(t *testing.T) {
	if got := string(batchBody([][]byte{[]byte(`{"event":"a"}`), []byte(`{"event": "b"}`)})); got != `{"events":[{"event":"a"},{"event": "b"}]}` {
		t.Errorf("batchBody: %s", got)
	}
	cases := []struct {
		field string
		want  int
	}{
		{"events[3].data.status", 3}, {"events[12]", 12}, {"events[0].event", 0},
		{"events", -1}, {"body", -1}, {"", -1}, {"events[x]", -1}, {"events[-1]", -1}, {"events[4", -1},
	}
	for _, tc := range cases {
		if got := batchEventIndex(tc.field); got != tc.want {
			t.Errorf("batchEventIndex(%q) = %d, want %d", tc.field, got, tc.want)
		}
	}
}

// writeFile writes content into a file of the test's temporary folder.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tableRows returns the rows of a table printed by a command, header first,
// each split into its columns.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// batchPosts returns the answers to POST .../events/batch among answers.
func batchPosts(answers []apiAnswer) []apiAnswer {
	var out []apiAnswer
	for _, a := range answers {
		if a.method == http.MethodPost && strings.HasSuffix(a.uri, "/events/batch") {
			out = append(out, a)
		}
	}
	return out
}

// countEvents counts a project's events.
func countEvents(t *testing.T, c *client.Client, pid string) int {
	t.Helper()
	n := 0
	for _, err := range c.AllEvents(context.Background(), pid, client.EventListOptions{Limit: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// mediaLines returns n JSON Lines of media.update.status events of the
// resources prefix-0 ... prefix-(n-1), the one at index bad with an unknown
// status (none when bad < 0).
func mediaLines(prefix string, n, bad int) string {
	var b strings.Builder
	for i := range n {
		status := "done"
		if i == bad {
			status = "finished"
		}
		fmt.Fprintf(&b, `{"event":"media.update.status","data":{"id":"%s-%d","status":"%s"}}`+"\n", prefix, i, status)
	}
	return b.String()
}

func TestCLIEventsSendBatch(t *testing.T) {
	e := newCLIEnv(t)
	ctx := context.Background()
	p, err := e.admin.CreateProject(ctx, "batch")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.CreateEndpoint(ctx, p.ID, client.EndpointCreate{URL: e.sink.URL}); err != nil {
		t.Fatal(err)
	}
	base := []string{"--url", e.url, "--key", p.APIKey, "--project", p.ID}
	args := func(a ...string) []string { return append(a, base...) }

	// JSON Lines: the table lists the events in the file's order; the
	// repeated idempotency key is the event before it, replayed.
	file := writeFile(t, "events.jsonl", `{"event":"media.update.status","data":{"id":"vid-1","status":"pending"}}
{"event":"media.update.status","data":{"id":"vid-1","status":"processing"}}

{"event":"live.created","data":{"event_id":"live-1"},"idempotency_key":"live-1"}
{"event":"media.update.status","data":{"id":"vid-1","status":"done"}}
{"event":"live.created","data":{"event_id":"live-1"},"idempotency_key":"live-1"}
`)
	e.answers.take()
	out, errOut, err := e.run(t, args("events", "send-batch", "--file", file)...)
	if err != nil {
		t.Fatalf("send-batch: %v\n%s", err, errOut)
	}
	if posts := batchPosts(e.answers.take()); len(posts) != 1 || posts[0].status != http.StatusAccepted {
		t.Fatalf("send-batch of 5 events made %d batch requests, want 1: %+v", len(posts), posts)
	}
	rows := tableRows(out)
	want := [][]string{
		{"ID", "EVENT", "RESOURCE", "REPLAYED"},
		{"", "media.update.status", "vid-1", "no"},
		{"", "media.update.status", "vid-1", "no"},
		{"", "live.created", "live-1", "no"},
		{"", "media.update.status", "vid-1", "no"},
		{"", "live.created", "live-1", "yes"},
	}
	if len(rows) != len(want) {
		t.Fatalf("table:\n%s", out)
	}
	for i := range want {
		if i > 0 {
			want[i][0] = rows[i][0]
		}
		if !slices.Equal(rows[i], want[i]) || (i > 0 && !strings.HasPrefix(rows[i][0], "msg_")) {
			t.Errorf("row %d: %q, want %q", i, rows[i], want[i])
		}
	}
	if rows[5][0] != rows[3][0] || rows[1][0] == rows[2][0] || rows[2][0] == rows[4][0] {
		t.Errorf("ids: the replayed row must repeat row 3 and the others differ:\n%s", out)
	}
	// Deliveries follow the file's order.
	waitUntil(t, "the batch's four deliveries", func() bool { return e.sink.count() == 4 })
	e.sink.mu.Lock()
	var statuses []string
	for _, b := range e.sink.bodies {
		var body struct{ Data struct{ ID, Status string } }
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		if body.Data.ID == "vid-1" {
			statuses = append(statuses, body.Data.Status)
		}
	}
	e.sink.mu.Unlock()
	if want := []string{"pending", "processing", "done"}; !slices.Equal(statuses, want) {
		t.Errorf("vid-1 delivered as %v, want %v", statuses, want)
	}

	// A {"events": [...]} body on stdin, --json: the API's answer.
	root := cliRoot()
	root.SetIn(strings.NewReader(`{"events": [
  {"event": "media.update.status", "data": {"id": "vid-2", "status": "done"}},
  {"event": "live.created", "data": {"event_id": "live-1"}, "idempotency_key": "live-1"}
]}`))
	out, errOut, err = cliExec(t, root, args("events", "send-batch", "--file", "-", "--json")...)
	if err != nil {
		t.Fatalf("send-batch --file - --json: %v\n%s", err, errOut)
	}
	posts := batchPosts(e.answers.take())
	if len(posts) != 1 {
		t.Fatalf("%d batch requests, want 1", len(posts))
	}
	if got, api := anyJSON(t, "the CLI's output", []byte(out)), anyJSON(t, "the API's answer", posts[0].body); !reflect.DeepEqual(got, api) {
		t.Errorf("send-batch --json is not the API's answer:\nCLI: %s\nAPI: %s", out, posts[0].body)
	}
	js := decodeJSON[struct{ Data []client.Event }](t, out)
	if len(js.Data) != 2 || js.Data[0].ResourceKey != "vid-2" || js.Data[0].Replayed || !js.Data[1].Replayed || js.Data[1].ID != rows[3][0] {
		t.Fatalf("send-batch --json: %+v", js.Data)
	}

	// One bad event refuses the whole file; its line is named.
	before := countEvents(t, e.admin, p.ID)
	bad := writeFile(t, "bad.jsonl", "{\"event\":\"live.created\",\"data\":{\"event_id\":\"live-9\"}}\n\n"+
		`{"event":"media.update.status","data":{"id":"vid-9","status":"failed"}}`+"\n")
	out, _, err = e.run(t, args("events", "send-batch", "--file", bad)...)
	if err == nil || !strings.Contains(err.Error(), "send events: line 3: invalid (HTTP 422): events[1]: data.status: expected one of") {
		t.Fatalf("a bad event: %v", err)
	}
	if out != "" {
		t.Errorf("a refused batch printed:\n%s", out)
	}
	if n := countEvents(t, e.admin, p.ID); n != before {
		t.Errorf("a refused batch changed the project's events from %d to %d", before, n)
	}
}

// TestCLISendBatchChunks: a file of more than 1,000 events goes in chunks of
// 1,000, in order; the first refused chunk stops the command, and the
// chunks before it stay accepted.
func TestCLISendBatchChunks(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "chunks")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--url", e.url, "--key", p.APIKey, "--project", p.ID}
	args := func(a ...string) []string { return append(a, base...) }

	file := writeFile(t, "bulk.jsonl", mediaLines("bulk", 2500, 1503))
	e.answers.take()
	out, errOut, err := e.run(t, args("events", "send-batch", "--file", file)...)
	want := "send events: chunk 2 of 3 (lines 1001 to 2000) refused, nothing of it stored; 1000 events accepted before it, 500 after it not sent: " +
		"line 1504: invalid (HTTP 422): events[503]: data.status: expected one of"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	if !strings.Contains(errOut, "sending 2500 events in 3 chunks of up to 1000 events and 4 MiB, in order: each chunk is stored whole or not at all, the file as a whole is not") {
		t.Errorf("stderr: %s", errOut)
	}
	posts := batchPosts(e.answers.take())
	if len(posts) != 2 || posts[0].status != http.StatusAccepted || posts[1].status != http.StatusUnprocessableEntity {
		t.Fatalf("batch requests: %d, want a 202 and a 422", len(posts))
	}
	first := decodeJSON[struct{ Data []client.Event }](t, string(posts[0].body))
	if len(first.Data) != 1000 || first.Data[0].ResourceKey != "bulk-0" || first.Data[999].ResourceKey != "bulk-999" {
		t.Fatalf("the first chunk held %d events", len(first.Data))
	}
	rows := tableRows(out)
	if len(rows) != 1001 || rows[1][2] != "bulk-0" || rows[1000][2] != "bulk-999" || rows[1][0] != first.Data[0].ID {
		t.Fatalf("the table of the accepted chunk has %d lines", len(rows))
	}
	if n := countEvents(t, e.admin, p.ID); n != 1000 {
		t.Fatalf("the project holds %d events, want the first chunk's 1000", n)
	}

	// --chunk-size, a {"events": [...]} body and --json: every chunk's
	// events in one {"data": [...]}, in the file's order.
	var items []string
	for i := range 5 {
		items = append(items, fmt.Sprintf(`{"event":"live.created","data":{"event_id":"small-%d"}}`, i))
	}
	small := writeFile(t, "small.json", `{"events":[`+strings.Join(items, ",")+`]}`)
	out, errOut, err = e.run(t, args("events", "send-batch", "--file", small, "--chunk-size", "2", "--json")...)
	if err != nil {
		t.Fatalf("--chunk-size 2: %v\n%s", err, errOut)
	}
	posts = batchPosts(e.answers.take())
	var data []any
	var sizes []int
	for _, a := range posts {
		page, _ := anyJSON(t, "an answer", a.body).(map[string]any)
		d, _ := page["data"].([]any)
		sizes = append(sizes, len(d))
		data = append(data, d...)
	}
	if !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("chunks of %v events, want 2, 2 and 1", sizes)
	}
	if got := anyJSON(t, "the CLI's output", []byte(out)); !reflect.DeepEqual(got, map[string]any{"data": data}) {
		t.Errorf("--json is not the chunks' data in one list:\n%s", out)
	}
	js := decodeJSON[struct{ Data []client.Event }](t, out)
	for i, ev := range js.Data {
		if ev.ResourceKey != fmt.Sprintf("small-%d", i) {
			t.Errorf("event %d is about %s", i, ev.ResourceKey)
		}
	}
}

// TestCLISendBatchChunkFailure: what the command says of a chunk depends on
// the answer: a 4xx refused it (nothing stored), anything else leaves its
// fate unknown.
func TestCLISendBatchChunkFailure(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(context.Background(), "proxy")
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, "three.jsonl", mediaLines("px", 3, -1))
	cases := []struct {
		status int
		want   string
	}{
		{http.StatusTooManyRequests, "send events: chunk 2 of 2 (lines 3 to 3) refused, nothing of it stored; 2 events accepted before it: rate_limited (HTTP 429)"},
		{http.StatusBadGateway, "send events: chunk 2 of 2 (lines 3 to 3) failed: it may or may not have been stored; 2 events accepted before it: internal (HTTP 502)"},
	}
	for _, tc := range cases {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			// A proxy passing the first batch to the API and answering
			// the second itself.
			var batches atomic.Int32
			api := httputil.NewSingleHostReverseProxy(target)
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/events/batch") && batches.Add(1) == 2 {
					http.Error(w, "proxy says no", tc.status)
					return
				}
				api.ServeHTTP(w, r)
			}))
			defer proxy.Close()
			out, _, err := e.run(t, "events", "send-batch", "--file", file, "--chunk-size", "2", "--url", proxy.URL, "--key", p.APIKey, "--project", p.ID)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if rows := tableRows(out); len(rows) != 3 || rows[1][2] != "px-0" || rows[2][2] != "px-1" {
				t.Fatalf("the first chunk's events are not listed:\n%s", out)
			}
		})
	}
}

// bigMedia is a media.update.status event whose message holds n bytes.
func bigMedia(id string, n int) string {
	return `{"event":"media.update.status","data":{"id":"` + id + `","status":"error","message":"` + strings.Repeat("m", n) + `"}}`
}

// TestCLISendBatchSplitsBy4MiB: a request ends before the API's 4 MiB
// whatever --chunk-size says, so a file of large events is not refused
// halfway through.
func TestCLISendBatchSplitsBy4MiB(t *testing.T) {
	e := newCLIEnv(t)
	p, err := e.admin.CreateProject(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := range 10 {
		lines.WriteString(bigMedia(fmt.Sprintf("big-%d", i), 600<<10) + "\n")
	}
	file := writeFile(t, "big.jsonl", lines.String())
	e.answers.take()
	_, errOut, err := e.run(t, "events", "send-batch", "--file", file, "--url", e.url, "--key", p.APIKey, "--project", p.ID)
	if err != nil {
		t.Fatalf("send-batch: %v\n%s", err, errOut)
	}
	posts := batchPosts(e.answers.take())
	if len(posts) != 2 {
		t.Fatalf("%d batch requests, want 2 (6 events of 600 KiB, then 4)", len(posts))
	}
	for i, want := range []int{6, 4} {
		got := decodeJSON[struct{ Data []client.Event }](t, string(posts[i].body))
		if posts[i].status != http.StatusAccepted || len(got.Data) != want {
			t.Errorf("request %d: %d with %d events, want 202 with %d", i, posts[i].status, len(got.Data), want)
		}
	}
	if n := countEvents(t, e.admin, p.ID); n != 10 {
		t.Errorf("the project holds %d events, want 10", n)
	}
}

// TestCLISendBatchLocalErrors: what can be seen in the file or the flags is
// refused before any request.
func TestCLISendBatchLocalErrors(t *testing.T) {
	e := newCLIEnv(t)
	good := writeFile(t, "good.jsonl", mediaLines("g", 2, -1))
	bad := writeFile(t, "bad.jsonl", mediaLines("g", 1, -1)+"{\"event\":\n")
	huge := writeFile(t, "huge.jsonl", mediaLines("g", 1, -1)+bigMedia("h", 1<<20)+"\n")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no file", nil, `required flag(s) "file" not set`},
		{"missing file", []string{"--file", filepath.Join(t.TempDir(), "none.jsonl")}, "--file: open "},
		{"chunk size 0", []string{"--file", good, "--chunk-size", "0"}, "--chunk-size 0: want 1 to 1000 events a request"},
		{"chunk size 1001", []string{"--file", good, "--chunk-size", "1001"}, "--chunk-size 1001: want 1 to 1000"},
		{"a bad line", []string{"--file", bad}, bad + ": line 2: not JSON"},
		{"an event over 1 MiB", []string{"--file", huge}, fmt.Sprintf("%s: line 2: the event is %d bytes as the API stores it; it takes events of at most 1048576", huge, len(bigMedia("h", 1<<20)))},
		{"positional argument", []string{good}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.answers.take()
			_, _, err := e.run(t, append(append([]string{"events", "send-batch"}, tc.args...), "--url", e.url, "--key", cliAdminKey)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if a := e.answers.take(); len(a) != 0 {
				t.Fatalf("%d requests made", len(a))
			}
		})
	}
}

// TestEventDataResource checks the data `events send` makes without --data:
// every catalog type's example, valid for the server's strict parser, about
// a new video or stream on each call unless --resource names one.
func TestEventDataResource(t *testing.T) {
	for _, typ := range kinehook.EventTypes {
		t.Run(string(typ), func(t *testing.T) {
			resourceOf := func(data json.RawMessage) string {
				t.Helper()
				body, _ := json.Marshal(map[string]any{"event": typ, "data": data})
				ev, err := kinehook.ParseStrict(body)
				if err != nil {
					t.Fatalf("example of %s with its id replaced does not parse: %v\n%s", typ, err, body)
				}
				return ev.ResourceKey()
			}
			a, err := eventData(typ, "", "")
			if err != nil {
				t.Fatal(err)
			}
			b, err := eventData(typ, "", "")
			if err != nil {
				t.Fatal(err)
			}
			ra, rb := resourceOf(a), resourceOf(b)
			if ra == "" || ra == rb {
				t.Fatalf("two sends without --resource are about %q and %q: want two new ids", ra, rb)
			}
			given := "7127f2d7-0e96-40d0-9a03-2e987c096466"
			if strings.HasPrefix(string(typ), "live.") {
				given = "abc123-def456-ghi789"
			}
			c, err := eventData(typ, "", given)
			if err != nil {
				t.Fatal(err)
			}
			if got := resourceOf(c); got != given {
				t.Fatalf("--resource %s gave resource %q", given, got)
			}
		})
	}
	if _, err := eventData(kinehook.EventTypes[0], `{"id":"x"}`, "y"); err == nil {
		t.Fatal("--data with --resource was accepted")
	}
	if id := newLiveEventID(); !regexp.MustCompile(`^[a-z]{3}[0-9]{3}-[a-z]{3}[0-9]{3}-[a-z]{3}[0-9]{3}$`).MatchString(id) {
		t.Fatalf("live event id %q is not shaped like the seed's", id)
	}
	if id := newVideoID(); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("video id %q is not a UUID v4", id)
	}
}
