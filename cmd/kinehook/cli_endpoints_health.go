package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/client"
)

// healthPairs are an endpoint's health lines for `endpoints get` and the like.
func healthPairs(h kinehook.EndpointHealth) [][2]string {
	if h.Breaker == "" {
		return nil // a server without health in its answers
	}
	out := [][2]string{{"breaker", h.Breaker}, {"consecutive_failures", strconv.Itoa(h.ConsecutiveFailures)}}
	if h.PausedUntil != nil {
		out = append(out, [2]string{"paused_until", apiTime(*h.PausedUntil)})
	}
	return out
}

// healthState is the STATE column of `endpoints list`.
func healthState(e *client.Endpoint) string {
	switch {
	case e.Disabled:
		return "disabled"
	case e.Health.Breaker == kinehook.BreakerOpen || e.Health.Breaker == kinehook.BreakerHalfOpen:
		return "breaker " + e.Health.Breaker
	case e.Health.PausedUntil != nil:
		return "paused until " + apiTime(*e.Health.PausedUntil)
	case !e.FailingSince.IsZero():
		return "failing since " + apiTime(e.FailingSince)
	}
	return "enabled"
}

// newEndpointStatsCmd builds `endpoints stats`.
func newEndpointStatsCmd(o *apiOptions) *cobra.Command {
	var window string
	var all bool
	cmd := &cobra.Command{
		Use:   "stats ENDPOINT_ID",
		Short: "Show an endpoint's deliveries by outcome and latency over 1h, 24h or 7d",
		Long: "Show an endpoint's delivery statistics: per bucket (1 min over 1h, 15 min over 24h,\n" +
			"1 h over 7d) the attempts that succeeded, the deliveries that failed for good, the\n" +
			"attempts that will be retried, and the p50/p99 attempt latency. Only buckets where\n" +
			"something happened are listed unless --all-buckets; --json prints the API's answer.",
		Example: "  kinehook endpoints stats ep_... --project prj_... --window 1h",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			st, err := c.EndpointStats(ctx, pid, args[0], window)
			if err != nil {
				return fmt.Errorf("stats of endpoint %s: %w", args[0], err)
			}
			return o.show(cmd, ans, func(w io.Writer) error { return printStats(w, st, all) })
		},
	}
	cmd.Flags().StringVar(&window, "window", "24h", "1h, 24h or 7d")
	cmd.Flags().BoolVar(&all, "all-buckets", false, "list every bucket of the window, empty ones too")
	return cmd
}

// printStats writes the buckets (non-empty ones unless all) and the totals.
func printStats(w io.Writer, st *kinehook.Stats, all bool) error {
	ms := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	var rows [][]string
	for _, b := range st.Buckets {
		if !all && b.Succeeded+b.Failed+b.Retried == 0 {
			continue
		}
		rows = append(rows, []string{apiTime(b.Start), n(b.Succeeded), n(b.Failed), n(b.Retried), ms(b.P50MS), ms(b.P99MS)})
	}
	t := st.Totals
	rows = append(rows, []string{"total (" + st.Window + ")", n(t.Succeeded), n(t.Failed), n(t.Retried), ms(t.P50MS), ms(t.P99MS)})
	return apiTable(w, []string{"BUCKET_START", "SUCCEEDED", "FAILED", "RETRIED", "P50_MS", "P99_MS"}, rows)
}

// newEndpointEnableCmd builds `endpoints enable` and `endpoints disable`.
func newEndpointEnableCmd(o *apiOptions, enable bool) *cobra.Command {
	use, short := "disable", "Disable an endpoint: nothing is sent to it until it is enabled"
	if enable {
		use, short = "enable", "Enable an endpoint: its disabled reason is cleared, its circuit breaker reset"
	}
	return &cobra.Command{
		Use:   use + " ENDPOINT_ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			change := c.DisableEndpoint
			if enable {
				change = c.EnableEndpoint
			}
			e, err := change(ctx, pid, args[0])
			if err != nil {
				return fmt.Errorf("%s endpoint %s: %w", use, args[0], err)
			}
			return showEndpoint(cmd, o, ans, e)
		},
	}
}

// newEndpointTestCmd builds `endpoints test`.
func newEndpointTestCmd(o *apiOptions) *cobra.Command {
	var eventType string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "test ENDPOINT_ID",
		Short: "Send a signed sample event to this endpoint alone and print the outcome",
		Long: "Send a signed sample event of the catalog to this endpoint alone, through the normal\n" +
			"delivery path (signature, retries, circuit breaker), then wait up to --wait for its\n" +
			"first attempt and print the outcome. It exits non-zero when the endpoint did not\n" +
			"accept it. --wait 0 prints the queued delivery without waiting.",
		Example: "  kinehook endpoints test ep_... --project prj_...\n  kinehook endpoints test ep_... --event-type live.connected --wait 1m",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, pid, err := o.setup(cmd)
			if err != nil {
				return err
			}
			ctx, ans := recordAnswers(cmd.Context())
			d, err := c.TestEndpoint(ctx, pid, args[0], kinehook.EventType(eventType))
			if err != nil {
				return fmt.Errorf("test endpoint %s: %w", args[0], err)
			}
			d, err = awaitAttempt(ctx, c, pid, d, wait)
			if err != nil {
				return err
			}
			if o.json {
				if err := apiPrintRaw(cmd.OutOrStdout(), ans.bodies[len(ans.bodies)-1]); err != nil {
					return err
				}
			} else if err := apiFields(cmd.OutOrStdout(), testPairs(d)); err != nil {
				return err
			}
			switch {
			case d.Status == kinehook.DeliverySucceeded || wait == 0:
				return nil
			case d.Attempts == 0:
				return fmt.Errorf("no attempt within %v (delivery %s is %s: the endpoint may be paused by its breaker)", wait, d.ID, d.Status)
			default:
				return fmt.Errorf("the endpoint did not accept the test event (delivery %s: %s)", d.ID, testOutcome(d))
			}
		},
	}
	cmd.Flags().StringVar(&eventType, "event-type", "", "the event type to send (default: the first catalog type the endpoint's filter selects)")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the first attempt (0: do not wait)")
	return cmd
}

// awaitAttempt polls the delivery until its first attempt is recorded, it
// is final, or wait has passed.
func awaitAttempt(ctx context.Context, c *client.Client, pid string, d *kinehook.Delivery, wait time.Duration) (*kinehook.Delivery, error) {
	deadline := time.Now().Add(wait)
	for d.Attempts == 0 && !d.Status.Final() && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		next, err := c.GetDelivery(ctx, pid, d.ID)
		if err != nil {
			return nil, fmt.Errorf("get delivery %s: %w", d.ID, err)
		}
		d = next
	}
	return d, nil
}

func testOutcome(d *kinehook.Delivery) string {
	out := string(d.Status)
	if d.LastStatusCode != 0 {
		out += ", HTTP " + strconv.Itoa(d.LastStatusCode)
	}
	if d.LastError != "" {
		out += ", " + d.LastError
	}
	return out
}

func testPairs(d *kinehook.Delivery) [][2]string {
	pairs := [][2]string{{"delivery", d.ID}, {"event", d.EventID}, {"event_type", string(d.EventType)},
		{"status", string(d.Status)}, {"attempts", strconv.Itoa(d.Attempts)}}
	if d.LastStatusCode != 0 {
		pairs = append(pairs, [2]string{"status_code", strconv.Itoa(d.LastStatusCode)})
	}
	if d.LastError != "" {
		pairs = append(pairs, [2]string{"error", d.LastError})
	}
	if d.Status == kinehook.DeliveryRetrying && !d.NextAttemptAt.IsZero() {
		pairs = append(pairs, [2]string{"next_attempt_at", apiTime(d.NextAttemptAt)})
	}
	return pairs
}
