package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/client"
)

// followGrace is how far back each poll of `events list --follow` looks
// behind the newest event it printed. Events are listed in acceptance order
// (seq), and created_at is taken just before the commit: on PostgreSQL a
// transaction that took its seq earlier may commit a little later than one
// already seen. Events accepted up to followGrace late are still printed,
// once each.
const followGrace = 10 * time.Second

// checkFollow refuses the flags that make no sense with --follow.
func (lo *eventListFlags) checkFollow() error {
	switch {
	case lo.all:
		return errors.New("--follow and --all cannot be combined: --follow prints the newest page, then every new event")
	case lo.cursor != "":
		return errors.New("--follow and --cursor cannot be combined: --follow starts from the newest events")
	case lo.until != "":
		return errors.New("--follow and --until cannot be combined: new events are never before --until")
	case lo.interval < 100*time.Millisecond:
		return fmt.Errorf("--interval %s: want at least 100ms", lo.interval)
	}
	return nil
}

// follower is the state of `events list --follow`: the events printed
// within the grace window, and the newest creation time seen.
type follower struct {
	c      *client.Client
	pid    string
	opts   client.EventListOptions
	w      io.Writer
	json   bool
	seen   map[string]time.Time
	newest time.Time
	header bool
}

// followEvents prints the newest page of events matching opts (oldest
// first), then polls every interval and prints the events accepted since,
// until Ctrl-C or SIGTERM, which end it without an error. A failed poll is
// reported on stderr and tried again; a refused key or a missing project
// ends it with the error.
func followEvents(cmd *cobra.Command, o *apiOptions, c *client.Client, pid string, opts client.EventListOptions, interval time.Duration) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := &follower{c: c, pid: pid, opts: opts, w: cmd.OutOrStdout(), json: o.json, seen: map[string]time.Time{}}
	first := true
	failing := false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := f.poll(ctx, first)
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil:
			if failing {
				fmt.Fprintln(cmd.ErrOrStderr(), "kinehook: listing events works again")
			}
			first, failing = false, false
		case fatalListError(err):
			return fmt.Errorf("follow events: %w", err)
		case !failing:
			fmt.Fprintf(cmd.ErrOrStderr(), "kinehook: follow events: %v (trying again every %s)\n", err, interval)
			failing = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// fatalListError reports whether err will not go away by asking again.
func fatalListError(err error) bool {
	switch client.ErrorCode(err) {
	case "unauthorized", "forbidden", "not_found", "invalid", "malformed":
		return true
	}
	return false
}

// followed is one event of a poll: the API's JSON of it, and its fields.
type followed struct {
	raw json.RawMessage
	ev  client.Event
}

// poll fetches the events newer than the grace window (the newest page
// only, the first time) and prints those not printed yet, oldest first.
func (f *follower) poll(ctx context.Context, first bool) error {
	var fresh []followed
	cutoff := f.newest.Add(-followGrace)
	opts := f.opts
	opts.Cursor = ""
	for {
		page, err := f.page(ctx, opts)
		if err != nil {
			return err
		}
		done := first || page.NextCursor == ""
		for _, it := range page.Data {
			if !first && it.ev.CreatedAt.Before(cutoff) {
				done = true
				break
			}
			if _, ok := f.seen[it.ev.ID]; !ok {
				fresh = append(fresh, it)
			}
		}
		if done {
			break
		}
		opts.Cursor = page.NextCursor
	}
	slices.Reverse(fresh) // oldest first, as accepted
	if err := f.print(fresh); err != nil {
		return err
	}
	for _, it := range fresh {
		f.seen[it.ev.ID] = it.ev.CreatedAt
		if it.ev.CreatedAt.After(f.newest) {
			f.newest = it.ev.CreatedAt
		}
	}
	for id, at := range f.seen {
		if at.Before(f.newest.Add(-2 * followGrace)) {
			delete(f.seen, id)
		}
	}
	return nil
}

// followPage is a page of the list with each event's JSON as the API sent it.
type followPage struct {
	Data       []followed
	NextCursor string
}

func (f *follower) page(ctx context.Context, opts client.EventListOptions) (*followPage, error) {
	var body []byte
	hooked := client.WithResponseHook(ctx, func(r *client.Response) { body = r.Body })
	if _, err := f.c.ListEvents(hooked, f.pid, opts); err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	var raw struct {
		Data       []json.RawMessage `json:"data"`
		NextCursor string            `json:"next_cursor"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("list events: read the answer: %w", err)
	}
	out := &followPage{NextCursor: raw.NextCursor, Data: make([]followed, len(raw.Data))}
	for i, r := range raw.Data {
		out.Data[i].raw = r
		if err := json.Unmarshal(r, &out.Data[i].ev); err != nil {
			return nil, fmt.Errorf("list events: read event %d of the answer: %w", i, err)
		}
	}
	return out, nil
}

// print writes events as lines: with --json one compact JSON object (the
// API's) a line, else the columns of `events list` (a header first).
func (f *follower) print(evs []followed) error {
	var b strings.Builder
	if !f.json && !f.header {
		f.header = true
		fmt.Fprintf(&b, "%-30s  %-24s  %-38s  %-16s  %s\n", "ID", "EVENT", "RESOURCE", "DETAIL", "CREATED")
	}
	for _, it := range evs {
		if f.json {
			line, err := marshalNoEscape(it.raw)
			if err != nil {
				return fmt.Errorf("write JSON: %w", err)
			}
			b.Write(line)
			b.WriteByte('\n')
			continue
		}
		ev := &it.ev
		fmt.Fprintf(&b, "%-30s  %-24s  %-38s  %-16s  %s\n", ev.ID, ev.Event, apiOr(eventResource(ev)), eventDetail(ev), apiTime(ev.CreatedAt))
	}
	if _, err := io.WriteString(f.w, b.String()); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
