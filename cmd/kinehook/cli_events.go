package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
	"github.com/kinehook/kinehook/internal/jsonshape"
)

func init() {
	rootCmd.AddCommand(newEventsCmd())
	rootCmd.AddCommand(newDeliveriesCmd())
}

// newEventsCmd builds `kinehook events send|send-batch|list|get`: the group
// and its shared flags; each subcommand has its own builder.
func newEventsCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:     "events",
		Aliases: []string{"event"},
		Short:   "Send and inspect a project's events",
	})
	o.register(cmd)
	cmd.AddCommand(newEventSendCmd(o), newSendBatchCmd(o), newEventListCmd(o), newEventGetCmd(o))
	return cmd
}

// newEventSendCmd builds `events send`.
func newEventSendCmd(o *apiOptions) *cobra.Command {
	var data, idemKey, resource string
	send := &cobra.Command{
		Use:   "send TYPE [--data JSON | --resource ID]",
		Short: "Send an event to every matching endpoint of the project",
		Long: "Send an event {\"event\": TYPE, \"data\": DATA}. Without --data the seed document's\n" +
			"example data of TYPE is sent, about a new video or live stream each time (a fresh\n" +
			"id, shaped like the seed's), or about --resource ID: give the same id to send\n" +
			"several events about one video or stream (they are delivered in order). The\n" +
			"server validates strictly (unknown types, unknown statuses or fields are refused\n" +
			"with invalid).",
		Example: `  kinehook events send media.update.status --data '{"id":"7127f2d7-0e96-40d0-9a03-2e987c096466","status":"done"}'
  kinehook events send live.created --resource abc123-def456-ghi789
  kinehook events send live.finished --resource abc123-def456-ghi789`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := kinehook.EventType(args[0])
			raw, err := eventData(t, data, resource)
			if err != nil {
				return err
			}
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			ev, err := c.SendEvent(ctx, pid, t, raw, idemKey)
			if err != nil {
				return fmt.Errorf("send event: %w", err)
			}
			return showEvent(cmd, o, ans, ev)
		},
	}
	send.Flags().StringVar(&data, "data", "", "the event's data object as JSON (default: the seed's example)")
	send.Flags().StringVar(&resource, "resource", "", "without --data: the video id (media events) or live event id (live events) of the example (default: a new one)")
	send.Flags().StringVar(&idemKey, "idempotency-key", "", "the same key within 24 h returns the first event and creates nothing")
	return send
}

// eventData is the data `events send` sends: --data, or else the catalog's
// sample data of t about resource, or about a new resource when resource is
// "" (the seed's examples all name one video and one stream, so every send
// queued behind the one before at the receiver's end).
func eventData(t kinehook.EventType, data, resource string) (json.RawMessage, error) {
	if data != "" {
		if resource != "" {
			return nil, fmt.Errorf("--resource only applies to the example data: put the id in --data")
		}
		if !json.Valid([]byte(data)) {
			return nil, fmt.Errorf("--data is not valid JSON")
		}
		return json.RawMessage(data), nil
	}
	sample := kinehook.SampleEvent(t)
	if sample == nil {
		return nil, fmt.Errorf("%q is not in the catalog, so there is no sample data: pass --data", t)
	}
	var env struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(sample, &env); err != nil {
		return nil, fmt.Errorf("read sample of %s: %w", t, err)
	}
	field, fresh := "id", newVideoID // media events: the video
	if _, ok := env.Data["event_id"]; ok {
		field, fresh = "event_id", newLiveEventID // live events: the stream
	}
	if _, ok := env.Data[field]; ok {
		if resource == "" {
			resource = fresh()
		}
		id, _ := json.Marshal(resource)
		env.Data[field] = id
	}
	out, err := json.Marshal(env.Data)
	if err != nil {
		return nil, fmt.Errorf("encode sample of %s: %w", t, err)
	}
	return out, nil
}

// newVideoID is a fresh video id, a UUID as Kinescope's are.
func newVideoID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newLiveEventID is a fresh live event id shaped like the seed's
// "abc123-def456-ghi789": three groups of three letters and three digits.
func newLiveEventID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, 20)
	for g := range 3 {
		if g > 0 {
			out = append(out, '-')
		}
		for i := range 6 {
			c := b[g*6+i]
			if i < 3 {
				out = append(out, 'a'+c%26)
			} else {
				out = append(out, '0'+c%10)
			}
		}
	}
	return string(out)
}

// eventListFlags are the flags of `events list`.
type eventListFlags struct {
	event, cursor, resource, status, since, until string
	source                                        string
	limit                                         int
	all                                           bool
	follow                                        bool
	interval                                      time.Duration
}

// newEventListCmd builds `events list`.
func newEventListCmd(o *apiOptions) *cobra.Command {
	lo := &eventListFlags{}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the project's events, newest first",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return runEventList(cmd, o, lo) },
	}
	lf := list.Flags()
	lf.StringVar(&lo.event, "event", "", "only this event type")
	lf.IntVar(&lo.limit, "limit", 0, "page size, 1 to 1000 (0: the server's default)")
	lf.StringVar(&lo.cursor, "cursor", "", "the next page's cursor, from a previous list")
	lf.StringVar(&lo.resource, "resource-id", "", "only events about this video id or live event id")
	lf.StringVar(&lo.source, "source-id", "", "only events that came through this inbox source (inb_...)")
	lf.StringVar(&lo.status, "status", "", "only events with a delivery in this status (pending, retrying, succeeded, failed)")
	lf.StringVar(&lo.since, "since", "", "only events created since (RFC 3339, a date, or a duration like 2h)")
	lf.StringVar(&lo.until, "until", "", "only events created before (RFC 3339, a date, or a duration like 2h)")
	lf.BoolVar(&lo.all, "all", false, "follow the cursor through every page")
	lf.BoolVarP(&lo.follow, "follow", "f", false, "after the newest page, keep printing new events as they are accepted, oldest first, until Ctrl-C")
	lf.DurationVar(&lo.interval, "interval", time.Second, "with --follow, how often to ask for new events (at least 100ms)")
	list.Example = `  kinehook events list --event media.update.status --since 1h
  kinehook events list --follow --resource-id 7127f2d7-0e96-40d0-9a03-2e987c096466
  kinehook events list -f --json | jq .id`
	return list
}

// options checks the flags of `events list` and turns them into the client's list options.
func (lo *eventListFlags) options(now time.Time) (client.EventListOptions, error) {
	if lo.limit < 0 || lo.limit > maxEventsLimit {
		return client.EventListOptions{}, fmt.Errorf("--limit %d: want 1 to %d events a page (0: the server's default)", lo.limit, maxEventsLimit)
	}
	opts := client.EventListOptions{
		Event: kinehook.EventType(lo.event), Cursor: lo.cursor, Limit: lo.limit,
		ResourceKey: lo.resource, Status: kinehook.DeliveryStatus(lo.status), SourceID: lo.source,
	}
	for _, tf := range []struct {
		flag, v string
		dst     *time.Time
	}{{"since", lo.since, &opts.Since}, {"until", lo.until, &opts.Until}} {
		if tf.v == "" {
			continue
		}
		t, err := parseSince(tf.v, now)
		if err != nil {
			return opts, fmt.Errorf("--%s: %w", tf.flag, err)
		}
		*tf.dst = t
	}
	return opts, nil
}

// runEventList lists events: one page, or every page with --all.
func runEventList(cmd *cobra.Command, o *apiOptions, lo *eventListFlags) error {
	opts, err := lo.options(time.Now())
	if err != nil {
		return err
	}
	if lo.follow {
		if err := lo.checkFollow(); err != nil {
			return err
		}
	}
	c, pid, err := o.setup(cmd)
	if err != nil {
		return err
	}
	if lo.follow {
		return followEvents(cmd, o, c, pid, opts, lo.interval)
	}
	ctx, ans := recordAnswers(cmd.Context())
	page, err := fetchEvents(ctx, c, pid, opts, lo.all)
	if err != nil {
		return fmt.Errorf("list events: %w", err)
	}
	if o.json {
		if lo.all {
			// Every page's data in one list, as if it were one page.
			return ans.printPages(cmd.OutOrStdout())
		}
		return ans.print(cmd.OutOrStdout())
	}
	rows := make([][]string, 0, len(page.Data))
	for _, ev := range page.Data {
		rows = append(rows, []string{ev.ID, string(ev.Event), apiOr(eventResource(ev)), eventDetail(ev), apiTime(ev.CreatedAt)})
	}
	if err := apiTable(cmd.OutOrStdout(), []string{"ID", "EVENT", "RESOURCE", "DETAIL", "CREATED"}, rows); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s\n", page.NextCursor)
	}
	return nil
}

// fetchEvents gets one page of events, or with all every page as one.
func fetchEvents(ctx context.Context, c *client.Client, pid string, opts client.EventListOptions, all bool) (*client.EventPage, error) {
	if !all {
		return c.ListEvents(ctx, pid, opts)
	}
	var page client.EventPage
	for ev, err := range c.AllEvents(ctx, pid, opts) {
		if err != nil {
			return nil, err
		}
		page.Data = append(page.Data, ev)
	}
	return &page, nil
}

// newEventGetCmd builds `events get`.
func newEventGetCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get EVENT_ID",
		Short: "Show one event with its payload",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			ev, err := c.GetEvent(ctx, pid, args[0])
			if err != nil {
				return fmt.Errorf("get event %s: %w", args[0], err)
			}
			return showEvent(cmd, o, ans, ev)
		},
	}
}

// newSendBatchCmd builds `kinehook events send-batch --file FILE`.
func newSendBatchCmd(o *apiOptions) *cobra.Command {
	var file string
	chunk := client.MaxBatchEvents
	cmd := &cobra.Command{
		Use:   "send-batch --file FILE",
		Short: "Send the events of a file through the batch route, 1,000 a request",
		Long: "Send the events of FILE (- for stdin) with POST .../events/batch. FILE is either the API's body\n" +
			"{\"events\": [{\"event\": TYPE, \"data\": {...}, \"idempotency_key\": \"...\"}, ...]} or JSON Lines,\n" +
			"one {\"event\", \"data\"[, \"idempotency_key\"]} object a line. Each event is sent as it is in the file.\n\n" +
			"Up to --chunk-size events (1,000) go in one request, stored all together or not at all, and\n" +
			"delivered in the file's order. A longer file is sent in chunks, in order: each chunk is atomic,\n" +
			"the file as a whole is not. The first refused chunk stops the command (exit status 1); the chunks\n" +
			"before it stay accepted. With an idempotency_key on every event, sending the file again is safe:\n" +
			"the events already accepted come back replayed and are not created twice.",
		Example: `  kinehook events send-batch --file events.jsonl
  printf '%s\n' '{"event":"live.created","data":{"event_id":"l1"}}' | kinehook events send-batch --file -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runSendBatch(cmd, o, file, chunk) },
	}
	cmd.Flags().StringVar(&file, "file", "", "the events: a {\"events\": [...]} body or JSON Lines; - reads stdin")
	cmd.Flags().IntVar(&chunk, "chunk-size", chunk, "most events a request, 1 to 1000 (a request also ends before 4 MiB)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// runSendBatch sends the events of file, chunk events at most a request.
func runSendBatch(cmd *cobra.Command, o *apiOptions, file string, chunk int) error {
	if chunk < 1 || chunk > client.MaxBatchEvents {
		return fmt.Errorf("--chunk-size %d: want 1 to %d events a request", chunk, client.MaxBatchEvents)
	}
	bf, ends, err := loadBatchFile(cmd, file, chunk)
	if err != nil {
		return err
	}
	c, pid, err := o.setup(cmd)
	if err != nil {
		return err
	}
	n := len(bf.items)
	chunks := len(ends)
	if chunks > 1 {
		fmt.Fprintf(cmd.ErrOrStderr(), "sending %d events in %d chunks of up to %d events and 4 MiB, in order: each chunk is stored whole or not at all, the file as a whole is not\n", n, chunks, chunk)
	}
	ctx, ans := recordAnswers(cmd.Context())
	var accepted []*client.Event
	start := 0
	for k, end := range ends {
		evs, err := c.SendEventsBody(ctx, pid, batchBody(bf.items[start:end]))
		if err == nil && len(evs) != end-start {
			// Stored (2xx), but not as this command can list it.
			return fmt.Errorf("send events: chunk %d of %d was stored, but the API answered %d events for the %d sent; %d events accepted before it", k+1, chunks, len(evs), end-start, start)
		}
		if err != nil {
			ans.bodies = ans.bodies[:min(len(ans.bodies), k)] // the answers of the chunks accepted
			if len(accepted) > 0 {
				if perr := showBatch(cmd, o, ans, accepted); perr != nil {
					return perr
				}
			}
			return bf.chunkError(err, k, chunks, start, end)
		}
		accepted = append(accepted, evs...)
		start = end
	}
	return showBatch(cmd, o, ans, accepted)
}

// loadBatchFile reads and checks the send-batch file (- for stdin) and
// splits it into requests of at most chunk events; it returns the end index
// of each request.
func loadBatchFile(cmd *cobra.Command, file string, chunk int) (*batchFile, []int, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(cmd.InOrStdin())
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--file: %w", err)
	}
	bf, err := readBatchFile(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", batchFileName(file), err)
	}
	ends, err := bf.chunkEnds(chunk)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", batchFileName(file), err)
	}
	return bf, ends, nil
}

// showBatch prints the events a batch command got accepted: a table, or with
// --json the API's answers as one {"data": [...]}.
func showBatch(cmd *cobra.Command, o *apiOptions, ans *apiAnswers, evs []*client.Event) error {
	if o.json {
		if len(ans.bodies) == 1 {
			return ans.print(cmd.OutOrStdout())
		}
		// Every chunk's data in one list, as if it were one answer.
		return ans.printPages(cmd.OutOrStdout())
	}
	rows := make([][]string, 0, len(evs))
	for _, ev := range evs {
		replayed := "no"
		if ev.Replayed {
			replayed = "yes"
		}
		rows = append(rows, []string{ev.ID, string(ev.Event), apiOr(eventResource(ev)), replayed})
	}
	return apiTable(cmd.OutOrStdout(), []string{"ID", "EVENT", "RESOURCE", "REPLAYED"}, rows)
}

// batchFileName names a send-batch file in messages.
func batchFileName(file string) string {
	if file == "-" {
		return "stdin"
	}
	return file
}

// batchFile is the events of a send-batch file, each the bytes of its JSON
// object as they are in the file.
type batchFile struct {
	items [][]byte
	// lines holds each event's line in a JSON Lines file; nil for a
	// {"events": [...]} body.
	lines []int
}

// where names the file's i-th event in messages: its line, or its index in
// the body's events.
func (f *batchFile) where(i int) string {
	if f.lines != nil {
		return fmt.Sprintf("line %d", f.lines[i])
	}
	return fmt.Sprintf("events[%d]", i)
}

// readBatchFile reads a send-batch file: a {"events": [...]} body, or JSON
// Lines (blank lines skipped; a file holding one event object may spread it
// over several lines). Each event must be a JSON object of strict text (UTF-8,
// no unpaired \u surrogate, no key twice), checked here so that a file's
// later chunk is not refused for what could be seen before the first was
// sent; what the events say is for the server to judge.
func readBatchFile(data []byte) (*batchFile, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("no events in the file")
	}
	var whole map[string]json.RawMessage
	if trimmed[0] == '{' && json.Unmarshal(trimmed, &whole) == nil {
		if _, ok := whole["events"]; ok {
			return readBatchBody(trimmed)
		}
		// One event object, on one line or several.
		lead := data[:len(data)-len(bytes.TrimLeftFunc(data, unicode.IsSpace))]
		f := &batchFile{items: [][]byte{trimmed}, lines: []int{1 + bytes.Count(lead, []byte("\n"))}}
		if err := checkBatchItem(f, 0); err != nil {
			return nil, err
		}
		return f, nil
	}
	if trimmed[0] == '[' {
		return nil, errors.New(`a JSON array is not a batch file: want {"events": [...]} or JSON Lines, one event a line`)
	}
	f := &batchFile{lines: []int{}}
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		f.items = append(f.items, line)
		f.lines = append(f.lines, i+1)
		if err := checkBatchItem(f, len(f.items)-1); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// readBatchBody reads {"events": [...]}: one member, an array of events.
func readBatchBody(body []byte) (*batchFile, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if _, err := dec.Token(); err != nil { // {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	var raw json.RawMessage
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		key, _ := tok.(string)
		switch {
		case key != "events":
			return nil, fmt.Errorf(`unknown key %q: a batch is {"events": [...]}`, key)
		case seen:
			return nil, errors.New(`the key "events" is given twice`)
		}
		seen = true
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil || items == nil {
		return nil, errors.New("events must be an array of events")
	}
	if len(items) == 0 {
		return nil, errors.New("no events in the file")
	}
	f := &batchFile{items: make([][]byte, len(items))}
	for i, it := range items {
		f.items[i] = it
		if err := checkBatchItem(f, i); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// checkBatchItem checks that the file's i-th event is a JSON object of
// strict text, as the API requires of a body.
func checkBatchItem(f *batchFile, i int) error {
	item := f.items[i]
	var v json.RawMessage
	if err := json.Unmarshal(item, &v); err != nil {
		return fmt.Errorf("%s: not JSON: %w", f.where(i), err)
	}
	switch {
	case item[0] != '{':
		return fmt.Errorf(`%s: not a JSON object {"event": TYPE, "data": {...}}`, f.where(i))
	case !utf8.Valid(item):
		return fmt.Errorf("%s: not UTF-8", f.where(i))
	case jsonshape.LoneSurrogateAt(item) >= 0:
		return fmt.Errorf("%s: an unpaired \\u surrogate escape", f.where(i))
	}
	if k, dup := jsonshape.DuplicateKey(item); dup {
		return fmt.Errorf("%s: the key %q is given twice", f.where(i), k)
	}
	return nil
}

// batchBody is the API's batch body holding items as they are.
func batchBody(items [][]byte) []byte {
	n := len(`{"events":[]}`) + len(items)
	for _, it := range items {
		n += len(it)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"events":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, "]}"...)
}

// batchEventIndex reads the index of the API's field "events[3]..." (-1 when
// the field names no event).
func batchEventIndex(field string) int {
	rest, ok := strings.CutPrefix(field, "events[")
	if !ok {
		return -1
	}
	digits, _, ok := strings.Cut(rest, "]")
	i, err := strconv.Atoi(digits)
	if !ok || err != nil || i < 0 {
		return -1
	}
	return i
}

// chunkEnds splits the file's events into requests, in order: each holds
// at most size events and a body within the API's 4 MiB; it returns the end
// index of each. An event over the API's 1 MiB is an error here, before any
// request is sent.
func (f *batchFile) chunkEnds(size int) ([]int, error) {
	var ends []int
	n, bytes := 0, len(`{"events":[]}`)
	for i, it := range f.items {
		if size := eventBytes(it); size > client.MaxEventBytes {
			return nil, fmt.Errorf("%s: the event is %d bytes as the API stores it; it takes events of at most %d", f.where(i), size, client.MaxEventBytes)
		}
		if n > 0 && (n == size || bytes+1+len(it) > client.MaxBatchBytes) {
			ends = append(ends, i)
			n, bytes = 0, len(`{"events":[]}`)
		}
		n++
		bytes += len(it) + 1 // and a comma
	}
	return append(ends, len(f.items)), nil
}

// eventBytes is the size of a batch item as the API stores and limits it:
// {"event":...,"data":...} from the members as they are (no idempotency key,
// no space between members).
func eventBytes(item []byte) int {
	var m map[string]json.RawMessage
	if json.Unmarshal(item, &m) != nil {
		return len(item)
	}
	return len(`{"event":,"data":}`) + len(m["event"]) + len(m["data"])
}

// chunkError describes the failure of chunk k (the file's events start to
// end-1): which chunk, what became of it and of the others, and, when the API
// names an event, where that event is in the file.
func (f *batchFile) chunkError(err error, k, chunks, start, end int) error {
	var ae *client.Error
	refused := errors.As(err, &ae) && ae.StatusCode < 500
	prefix := "send events"
	if chunks > 1 {
		what := "refused, nothing of it stored"
		if !refused {
			what = "failed: it may or may not have been stored"
		}
		span := fmt.Sprintf("events[%d] to events[%d]", start, end-1)
		if f.lines != nil {
			span = fmt.Sprintf("lines %d to %d", f.lines[start], f.lines[end-1])
		}
		prefix = fmt.Sprintf("send events: chunk %d of %d (%s) %s; %d events accepted before it",
			k+1, chunks, span, what, start)
		if after := len(f.items) - end; after > 0 {
			prefix += fmt.Sprintf(", %d after it not sent", after)
		}
	}
	if ae != nil {
		if i := batchEventIndex(ae.Field); i >= 0 && start+i < end {
			switch {
			case f.lines != nil:
				prefix += ": " + f.where(start+i)
			case start > 0:
				prefix += fmt.Sprintf(": events[%d] of the file", start+i)
			}
		} else if ae.Code == kinehook.ETOOLARGE && ae.Field == "" {
			prefix += " (a smaller --chunk-size sends fewer events a request)"
		}
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// eventResource returns what an event is about, from its data.
func eventResource(ev *client.Event) string {
	if ev.ResourceKey != "" {
		return ev.ResourceKey
	}
	body, err := ev.Body()
	if err != nil {
		return ""
	}
	p, err := kinehook.ParseLenient(body)
	if err != nil {
		return ""
	}
	return p.ResourceKey()
}

// eventDetail returns the status of a media event or the recording of a live one.
func eventDetail(ev *client.Event) string {
	var d struct {
		Status  string `json:"status"`
		VideoID string `json:"video_id"`
	}
	_ = json.Unmarshal(ev.Data, &d)
	switch {
	case d.Status != "":
		return d.Status
	case d.VideoID != "":
		return "video " + d.VideoID
	}
	return "-"
}

// maxEventsLimit is the largest page of `events list` the API serves.
const maxEventsLimit = 1000

func showEvent(cmd *cobra.Command, o *apiOptions, ans *apiAnswers, ev *client.Event) error {
	if o.json {
		return ans.print(cmd.OutOrStdout())
	}
	var data bytes.Buffer
	if err := json.Indent(&data, ev.Data, "", "  "); err != nil {
		data.Reset()
		data.Write(ev.Data)
	}
	if err := apiFields(cmd.OutOrStdout(), [][2]string{
		{"id", ev.ID}, {"event", string(ev.Event)}, {"resource", apiOr(eventResource(ev))}, {"created_at", apiTime(ev.CreatedAt)},
	}); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "data:\n%s\n", data.String())
	return nil
}

// newDeliveriesCmd builds `kinehook deliveries list|get|attempts|retry`: the
// group and its shared flags; each subcommand has its own builder.
func newDeliveriesCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:     "deliveries",
		Aliases: []string{"delivery"},
		Short:   "Inspect and retry deliveries (one event on its way to one endpoint)",
	})
	o.register(cmd)
	cmd.AddCommand(newDeliveryListCmd(o), newDeliveryGetCmd(o), newDeliveryAttemptsCmd(o), newDeliveryRetryCmd(o))
	return cmd
}

// deliverySearchFlags are the filters of `deliveries list` and
// `deliveries retry`.
type deliverySearchFlags struct {
	endpoint, event, resource, eventID, since, until string
	status                                           []string
}

// register adds the filter flags; defaultStatus is --status's default.
func (sf *deliverySearchFlags) register(fs *pflag.FlagSet, defaultStatus []string, statusHelp string) {
	fs.StringVar(&sf.endpoint, "endpoint", "", "only deliveries to this endpoint (ep_...)")
	fs.StringSliceVar(&sf.status, "status", defaultStatus, statusHelp)
	fs.StringVar(&sf.event, "event", "", "only deliveries of events of this type")
	fs.StringVar(&sf.resource, "resource", "", "only deliveries of events about this video id or live event id")
	fs.StringVar(&sf.resource, "resource-id", "", "the same as --resource (the name `events list` uses)")
	fs.StringVar(&sf.eventID, "event-id", "", "only the deliveries of this event (msg_...)")
	fs.StringVar(&sf.since, "since", "", "only deliveries of events created since (RFC 3339, a date, or a duration like 2h)")
	fs.StringVar(&sf.until, "until", "", "only deliveries of events created before (RFC 3339, a date, or a duration like 2h)")
}

// options turns the filters into the client's search options; the server
// checks the values (statuses, event type) and names a wrong one.
func (sf *deliverySearchFlags) options(now time.Time) (client.DeliverySearchOptions, error) {
	o := client.DeliverySearchOptions{EndpointID: sf.endpoint, Event: kinehook.EventType(sf.event), Resource: sf.resource, EventID: sf.eventID}
	for _, st := range sf.status {
		if st = strings.TrimSpace(st); st != "" {
			o.Statuses = append(o.Statuses, kinehook.DeliveryStatus(st))
		}
	}
	for _, tf := range []struct {
		flag, v string
		dst     *time.Time
	}{{"since", sf.since, &o.Since}, {"until", sf.until, &o.Until}} {
		if tf.v == "" {
			continue
		}
		t, err := parseSince(tf.v, now)
		if err != nil {
			return o, fmt.Errorf("--%s: %w", tf.flag, err)
		}
		*tf.dst = t
	}
	return o, nil
}

// describe says in words what the filters select, for the confirmation.
func (sf *deliverySearchFlags) describe(o client.DeliverySearchOptions) string {
	var parts []string
	for _, kv := range [][2]string{{"endpoint", o.EndpointID}, {"event", string(o.Event)}, {"resource", o.Resource}, {"event id", o.EventID}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+" "+kv[1])
		}
	}
	if !o.Since.IsZero() {
		parts = append(parts, "since "+apiTime(o.Since))
	}
	if !o.Until.IsZero() {
		parts = append(parts, "before "+apiTime(o.Until))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// changed reports whether any filter flag was given.
func (sf *deliverySearchFlags) changed(fs *pflag.FlagSet) bool {
	for _, name := range []string{"endpoint", "status", "event", "resource", "resource-id", "event-id", "since", "until"} {
		if fs.Changed(name) {
			return true
		}
	}
	return false
}

// newDeliveryListCmd builds `deliveries list`: an event's deliveries, or a
// search of the project's.
func newDeliveryListCmd(o *apiOptions) *cobra.Command {
	sf := &deliverySearchFlags{}
	var limit int
	var cursor string
	var all bool
	list := &cobra.Command{
		Use:   "list [EVENT_ID]",
		Short: "Search the project's deliveries, newest first (or list one event's)",
		Long: "Without an argument, search the project's deliveries, newest first, by the filters given\n" +
			"(all of them apply). With EVENT_ID, list that event's deliveries (no filter applies).",
		Example: `  kinehook deliveries list --endpoint ep_... --status failed,retrying --since 2h
  kinehook deliveries list --resource 7127f2d7-0e96-40d0-9a03-2e987c096466 --all
  kinehook deliveries list msg_...`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if sf.changed(cmd.Flags()) || cmd.Flags().Changed("limit") || cmd.Flags().Changed("cursor") || all {
					return errors.New("an EVENT_ID lists that event's deliveries: the filters, --limit, --cursor and --all apply to a search without one (or use --event-id)")
				}
				return runEventDeliveries(cmd, o, args[0])
			}
			if limit < 0 || limit > maxEventsLimit {
				return fmt.Errorf("--limit %d: want 1 to %d deliveries a page (0: the server's default)", limit, maxEventsLimit)
			}
			opts, err := sf.options(time.Now())
			if err != nil {
				return err
			}
			opts.Limit, opts.Cursor = limit, cursor
			return runDeliverySearch(cmd, o, opts, all)
		},
	}
	lf := list.Flags()
	sf.register(lf, nil, "only deliveries in these statuses: pending, retrying, succeeded, failed (repeat or separate with commas)")
	lf.IntVar(&limit, "limit", 0, "page size, 1 to 1000 (0: the server's default)")
	lf.StringVar(&cursor, "cursor", "", "the next page's cursor, from a previous list")
	lf.BoolVar(&all, "all", false, "follow the cursor through every page")
	return list
}

// runEventDeliveries lists one event's deliveries (GET .../events/{id}/deliveries).
func runEventDeliveries(cmd *cobra.Command, o *apiOptions, eventID string) error {
	return apiCall(o, func(ctx context.Context, c *client.Client, pid string, args []string) ([]*kinehook.Delivery, error) {
		ds, err := c.ListDeliveries(ctx, pid, eventID)
		if err != nil {
			return nil, fmt.Errorf("list deliveries of event %s: %w", eventID, err)
		}
		return ds, nil
	}, func(w io.Writer, ds []*kinehook.Delivery) error {
		rows := make([][]string, 0, len(ds))
		for _, d := range ds {
			rows = append(rows, []string{d.ID, d.EndpointID, string(d.Status), strconv.Itoa(d.Attempts), statusCode(d.LastStatusCode), apiTime(d.NextAttemptAt)})
		}
		return apiTable(w, []string{"ID", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST_CODE", "NEXT_ATTEMPT"}, rows)
	})(cmd, nil)
}

// runDeliverySearch prints one page of the search, or every page with all.
func runDeliverySearch(cmd *cobra.Command, o *apiOptions, opts client.DeliverySearchOptions, all bool) error {
	c, pid, err := o.setup(cmd)
	if err != nil {
		return err
	}
	ctx, ans := recordAnswers(cmd.Context())
	var page client.DeliveryPage
	if all {
		for d, err := range c.AllDeliveries(ctx, pid, opts) {
			if err != nil {
				return fmt.Errorf("search deliveries: %w", err)
			}
			page.Data = append(page.Data, d)
		}
	} else {
		p, err := c.SearchDeliveries(ctx, pid, opts)
		if err != nil {
			return fmt.Errorf("search deliveries: %w", err)
		}
		page = *p
	}
	if o.json {
		if all {
			return ans.printPages(cmd.OutOrStdout())
		}
		return ans.print(cmd.OutOrStdout())
	}
	rows := make([][]string, 0, len(page.Data))
	for _, d := range page.Data {
		rows = append(rows, []string{d.ID, d.EndpointID, string(d.EventType), apiOr(d.ResourceKey), string(d.Status),
			strconv.Itoa(d.Attempts), statusCode(d.LastStatusCode), apiTime(d.CreatedAt)})
	}
	if err := apiTable(cmd.OutOrStdout(), []string{"ID", "ENDPOINT", "EVENT", "RESOURCE", "STATUS", "ATTEMPTS", "LAST_CODE", "CREATED"}, rows); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s\n", page.NextCursor)
	}
	return nil
}

// newDeliveryGetCmd builds `deliveries get`.
func newDeliveryGetCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "get DELIVERY_ID",
		Short: "Show one delivery: its status, attempts so far, last answer and next attempt",
		Args:  cobra.ExactArgs(1),
		RunE: apiCall(o, func(ctx context.Context, c *client.Client, pid string, args []string) (*kinehook.Delivery, error) {
			d, err := c.GetDelivery(ctx, pid, args[0])
			if err != nil {
				return nil, fmt.Errorf("get delivery %s: %w", args[0], err)
			}
			return d, nil
		}, func(w io.Writer, d *kinehook.Delivery) error {
			return apiFields(w, deliveryPairs(d))
		}),
	}
}

// newDeliveryAttemptsCmd builds `deliveries attempts`.
func newDeliveryAttemptsCmd(o *apiOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "attempts DELIVERY_ID",
		Short: "List every HTTP attempt of a delivery",
		Args:  cobra.ExactArgs(1),
		RunE: apiCall(o, func(ctx context.Context, c *client.Client, pid string, args []string) ([]*kinehook.Attempt, error) {
			as, err := c.ListAttempts(ctx, pid, args[0])
			if err != nil {
				return nil, fmt.Errorf("list attempts of delivery %s: %w", args[0], err)
			}
			return as, nil
		}, func(w io.Writer, as []*kinehook.Attempt) error {
			rows := make([][]string, 0, len(as))
			for _, a := range as {
				rows = append(rows, []string{apiOr(a.ID), apiTime(a.AttemptedAt), statusCode(a.StatusCode), strconv.FormatFloat(a.DurationMS, 'f', 1, 64), apiOr(a.Error), apiOr(oneLine(a.ResponseBody, 60))})
			}
			return apiTable(w, []string{"ID", "ATTEMPTED_AT", "STATUS", "DURATION_MS", "ERROR", "RESPONSE"}, rows)
		}),
	}
}

// newDeliveryRetryCmd builds `deliveries retry`: one delivery, or every
// failed one the filters match.
func newDeliveryRetryCmd(o *apiOptions) *cobra.Command {
	sf := &deliverySearchFlags{}
	var yes bool
	retry := &cobra.Command{
		Use:   "retry [DELIVERY_ID]",
		Short: "Send a delivery again now, or every failed delivery the filters match",
		Long: "With DELIVERY_ID, send that delivery again now, whatever its state. Without one, re-send\n" +
			"every failed delivery of the project that the filters match, oldest first so that each\n" +
			"resource's order is kept, and print how many. Only failed deliveries are re-sent,\n" +
			"whatever --status says. On a terminal it asks first; --yes skips the question.",
		Example: `  kinehook deliveries retry dlv_...
  kinehook deliveries retry --status failed --endpoint ep_... --since 24h
  kinehook deliveries retry --resource 7127f2d7-0e96-40d0-9a03-2e987c096466 --yes`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if sf.changed(cmd.Flags()) {
					return errors.New("a DELIVERY_ID is sent again on its own: the filters apply to a bulk retry without one")
				}
				return runRetryOne(cmd, o, args[0])
			}
			opts, err := sf.options(time.Now())
			if err != nil {
				return err
			}
			return runRetryMany(cmd, o, sf, opts, yes)
		},
	}
	rf := retry.Flags()
	sf.register(rf, []string{"failed"}, "only failed deliveries are re-sent: failed (the default); a list without failed matches nothing")
	rf.BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return retry
}

// runRetryOne sends one delivery again (POST .../deliveries/{did}/retry).
func runRetryOne(cmd *cobra.Command, o *apiOptions, id string) error {
	return apiCall(o, func(ctx context.Context, c *client.Client, pid string, args []string) (*kinehook.Delivery, error) {
		d, err := c.RetryDelivery(ctx, pid, id)
		if err != nil {
			return nil, fmt.Errorf("retry delivery %s: %w", id, err)
		}
		return d, nil
	}, func(w io.Writer, d *kinehook.Delivery) error {
		_, err := fmt.Fprintf(w, "retrying delivery %s (status %s, %d attempts so far)\n", d.ID, d.Status, d.Attempts)
		return err
	})(cmd, nil)
}

// runRetryMany re-sends the matching failed deliveries (POST
// .../deliveries/retry), after a confirmation on a terminal.
func runRetryMany(cmd *cobra.Command, o *apiOptions, sf *deliverySearchFlags, opts client.DeliverySearchOptions, yes bool) error {
	c, pid, err := o.setup(cmd)
	if err != nil {
		return err
	}
	if !yes && readerIsTerminal(cmd.InOrStdin()) {
		ok, err := confirmRetry(cmd, c, pid, sf, opts)
		if err != nil || !ok {
			return err
		}
	}
	ctx, ans := recordAnswers(cmd.Context())
	n, err := c.RetryDeliveries(ctx, pid, opts)
	if err != nil {
		return fmt.Errorf("retry deliveries: %w", err)
	}
	return o.show(cmd, ans, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "re-sending %d failed deliveries\n", n)
		return err
	})
}

// confirmRetry tells how many failed deliveries match (counted up to a few
// pages) and asks whether to re-send them.
func confirmRetry(cmd *cobra.Command, c *client.Client, pid string, sf *deliverySearchFlags, opts client.DeliverySearchOptions) (bool, error) {
	const countUpTo = 5000
	count := opts
	count.Statuses = []kinehook.DeliveryStatus{kinehook.DeliveryFailed}
	if len(opts.Statuses) > 0 && !slices.Contains(opts.Statuses, kinehook.DeliveryFailed) {
		fmt.Fprintln(cmd.ErrOrStderr(), "--status has no failed: nothing to re-send")
		return false, nil
	}
	count.Limit = 1000
	n, more := 0, false
	for d, err := range c.AllDeliveries(cmd.Context(), pid, count) {
		if err != nil {
			return false, fmt.Errorf("count the failed deliveries: %w", err)
		}
		if d != nil {
			n++
		}
		if n >= countUpTo {
			more = true
			break
		}
	}
	if n == 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "no failed delivery matches%s\n", sf.describe(opts))
		return false, nil
	}
	what := strconv.Itoa(n)
	if more {
		what = "more than " + strconv.Itoa(countUpTo)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Re-send %s failed deliveries of project %s%s? [y/N] ", what, pid, sf.describe(opts))
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "nothing re-sent")
	return false, nil
}

// readerIsTerminal reports whether r is an interactive terminal: a
// character device, or a reader that says so (IsTerminal, as tests give).
func readerIsTerminal(r io.Reader) bool {
	if t, ok := r.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// statusCode formats an HTTP status for tables ("-" when there was none).
func statusCode(code int) string {
	if code == 0 {
		return "-"
	}
	return strconv.Itoa(code)
}

// deliveryPairs prints a delivery as label/value lines.
func deliveryPairs(d *kinehook.Delivery) [][2]string {
	code := statusCode(d.LastStatusCode)
	next := "-"
	if !d.NextAttemptAt.IsZero() && !d.Status.Final() {
		next = apiTime(d.NextAttemptAt)
	}
	return [][2]string{
		{"id", d.ID}, {"event_id", d.EventID}, {"event_type", apiOr(string(d.EventType))}, {"resource", apiOr(d.ResourceKey)},
		{"endpoint_id", d.EndpointID}, {"status", string(d.Status)}, {"attempts", strconv.Itoa(d.Attempts)},
		{"last_status_code", code}, {"last_error", apiOr(d.LastError)}, {"next_attempt_at", next},
		{"created_at", apiTime(d.CreatedAt)}, {"updated_at", apiTime(d.UpdatedAt)},
	}
}

// oneLine squeezes s onto one line of at most n runes.
func oneLine(s string, n int) string {
	r := []rune(string(bytes.Join(bytes.Fields([]byte(s)), []byte(" "))))
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return string(r)
}
