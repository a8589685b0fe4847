package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

func init() {
	rootCmd.AddCommand(newEventsCmd())
	rootCmd.AddCommand(newDeliveriesCmd())
}

// newEventsCmd builds `kinehook events send|list|get`.
func newEventsCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:     "events",
		Aliases: []string{"event"},
		Short:   "Send and inspect a project's events",
	})
	o.register(cmd)

	var data, idemKey string
	send := &cobra.Command{
		Use:   "send TYPE [--data JSON]",
		Short: "Send an event to every matching endpoint of the project",
		Long: "Send an event {\"event\": TYPE, \"data\": DATA}. Without --data the seed document's\n" +
			"example data of TYPE is sent. The server validates strictly (unknown types,\n" +
			"unknown statuses or fields are refused with invalid).",
		Example: `  kinehook events send media.update.status --data '{"id":"7127f2d7-0e96-40d0-9a03-2e987c096466","status":"done"}'
  kinehook events send live.finished`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := kinehook.EventType(args[0])
			var raw json.RawMessage
			if data != "" {
				if !json.Valid([]byte(data)) {
					return fmt.Errorf("--data is not valid JSON")
				}
				raw = json.RawMessage(data)
			} else {
				sample := kinehook.SampleEvent(t)
				if sample == nil {
					return fmt.Errorf("%q is not in the catalog, so there is no sample data: pass --data", t)
				}
				var env kinehook.Envelope
				if err := json.Unmarshal(sample, &env); err != nil {
					return fmt.Errorf("read sample of %s: %w", t, err)
				}
				raw = env.Data
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
	send.Flags().StringVar(&idemKey, "idempotency-key", "", "the same key within 24 h returns the first event and creates nothing")

	var lo struct {
		event, cursor, resource, status, since, until string
		limit                                         int
		all                                           bool
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the project's events, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if lo.limit < 0 || lo.limit > maxEventsLimit {
				return fmt.Errorf("--limit %d: want 1 to %d events a page (0: the server's default)", lo.limit, maxEventsLimit)
			}
			opts := client.EventListOptions{
				Event: kinehook.EventType(lo.event), Cursor: lo.cursor, Limit: lo.limit,
				ResourceKey: lo.resource, Status: kinehook.DeliveryStatus(lo.status),
			}
			now := time.Now()
			for _, tf := range []struct {
				flag, v string
				dst     *time.Time
			}{{"since", lo.since, &opts.Since}, {"until", lo.until, &opts.Until}} {
				if tf.v == "" {
					continue
				}
				t, err := parseSince(tf.v, now)
				if err != nil {
					return fmt.Errorf("--%s: %w", tf.flag, err)
				}
				*tf.dst = t
			}
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			var page client.EventPage
			if lo.all {
				for ev, err := range c.AllEvents(ctx, pid, opts) {
					if err != nil {
						return fmt.Errorf("list events: %w", err)
					}
					page.Data = append(page.Data, ev)
				}
			} else {
				p, err := c.ListEvents(ctx, pid, opts)
				if err != nil {
					return fmt.Errorf("list events: %w", err)
				}
				page = *p
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
		},
	}
	lf := list.Flags()
	lf.StringVar(&lo.event, "event", "", "only this event type")
	lf.IntVar(&lo.limit, "limit", 0, "page size, 1 to 1000 (0: the server's default)")
	lf.StringVar(&lo.cursor, "cursor", "", "the next page's cursor, from a previous list")
	lf.StringVar(&lo.resource, "resource-id", "", "only events about this video id or live event id")
	lf.StringVar(&lo.status, "status", "", "only events with a delivery in this status (pending, retrying, succeeded, failed)")
	lf.StringVar(&lo.since, "since", "", "only events created since (RFC 3339, a date, or a duration like 2h)")
	lf.StringVar(&lo.until, "until", "", "only events created before (RFC 3339, a date, or a duration like 2h)")
	lf.BoolVar(&lo.all, "all", false, "follow the cursor through every page")

	get := &cobra.Command{
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
	cmd.AddCommand(send, list, get)
	return cmd
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

// newDeliveriesCmd builds `kinehook deliveries list|get|attempts|retry`.
func newDeliveriesCmd() *cobra.Command {
	o := &apiOptions{withProject: true}
	cmd := apiGroup(&cobra.Command{
		Use:     "deliveries",
		Aliases: []string{"delivery"},
		Short:   "Inspect and retry deliveries (one event on its way to one endpoint)",
	})
	o.register(cmd)

	list := &cobra.Command{
		Use:   "list EVENT_ID",
		Short: "List an event's deliveries",
		Args:  cobra.ExactArgs(1),
		RunE: apiCall(o, func(ctx context.Context, c *client.Client, pid string, args []string) ([]*kinehook.Delivery, error) {
			ds, err := c.ListDeliveries(ctx, pid, args[0])
			if err != nil {
				return nil, fmt.Errorf("list deliveries of event %s: %w", args[0], err)
			}
			return ds, nil
		}, func(w io.Writer, ds []*kinehook.Delivery) error {
			rows := make([][]string, 0, len(ds))
			for _, d := range ds {
				code := "-"
				if d.LastStatusCode != 0 {
					code = strconv.Itoa(d.LastStatusCode)
				}
				rows = append(rows, []string{d.ID, d.EndpointID, string(d.Status), strconv.Itoa(d.Attempts), code, apiTime(d.NextAttemptAt)})
			}
			return apiTable(w, []string{"ID", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST_CODE", "NEXT_ATTEMPT"}, rows)
		}),
	}

	get := &cobra.Command{
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

	attempts := &cobra.Command{
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
				code := "-"
				if a.StatusCode != 0 {
					code = strconv.Itoa(a.StatusCode)
				}
				rows = append(rows, []string{apiOr(a.ID), apiTime(a.AttemptedAt), code, strconv.FormatFloat(a.DurationMS, 'f', 1, 64), apiOr(a.Error), apiOr(oneLine(a.ResponseBody, 60))})
			}
			return apiTable(w, []string{"ID", "ATTEMPTED_AT", "STATUS", "DURATION_MS", "ERROR", "RESPONSE"}, rows)
		}),
	}

	retry := &cobra.Command{
		Use:   "retry DELIVERY_ID",
		Short: "Send a delivery again now",
		Args:  cobra.ExactArgs(1),
		RunE: apiCall(o, func(ctx context.Context, c *client.Client, pid string, args []string) (*kinehook.Delivery, error) {
			d, err := c.RetryDelivery(ctx, pid, args[0])
			if err != nil {
				return nil, fmt.Errorf("retry delivery %s: %w", args[0], err)
			}
			return d, nil
		}, func(w io.Writer, d *kinehook.Delivery) error {
			_, err := fmt.Fprintf(w, "retrying delivery %s (status %s, %d attempts so far)\n", d.ID, d.Status, d.Attempts)
			return err
		}),
	}
	cmd.AddCommand(list, get, attempts, retry)
	return cmd
}

// deliveryPairs prints a delivery as label/value lines.
func deliveryPairs(d *kinehook.Delivery) [][2]string {
	code := "-"
	if d.LastStatusCode != 0 {
		code = strconv.Itoa(d.LastStatusCode)
	}
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
