package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kinehook/kinehook/client"
	"github.com/kinehook/kinehook/cmd/kinehook/internal/simulator"
)

func init() { rootCmd.AddCommand(newSimulateCmd()) }

// simulateOptions are the flags of `kinehook simulate`.
type simulateOptions struct {
	api         apiOptions
	rate        string
	concurrency int
	duration    time.Duration
	seed        uint64
	gen         simulator.Config
}

// parseRate reads "50", "50/s" or "3000/m" as events per second (0 = unlimited).
func parseRate(s string) (float64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v != v {
		return 0, fmt.Errorf("rate %q: want a number of events per second, like 50 or 50/s", s)
	}
	switch unit {
	case "", "s":
	case "m", "min":
		v /= 60
	default:
		return 0, fmt.Errorf("rate %q: unit must be /s or /m", s)
	}
	return v, nil
}

// newSimulateCmd builds `kinehook simulate`.
func newSimulateCmd() *cobra.Command {
	o := &simulateOptions{api: apiOptions{withProject: true}, gen: simulator.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "simulate --url SERVER --key KEY --project P",
		Short: "Post a video platform's realistic event streams to a kinehook server",
		Long: `Simulate a video platform: media lifecycles (pending -> uploading -> pre-processing
-> processing -> done, with shares ending in error or aborted or passing through
suspended) and live streams (created -> connected -> enabled -> (disconnected ->
connected)* -> finished with the recording's video_id, or cancelled), posted to
POST /v1/projects/{pid}/events. The events of one video or stream go in
lifecycle order, each after the previous one was accepted; many resources are
interleaved. When an event fails (refused, or still throttled after 8 retries),
its resource's later events are not posted: that lifecycle is abandoned, shown
apart in the summary and never counted as complete. --media 0 --live 0 runs
endlessly (until --duration or Ctrl-C).`,
		Example: `  kinehook simulate --url http://127.0.0.1:8080 --key kh_... --project prj_... --rate 100/s --media 500 --live 50`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, args []string) error { return runSimulate(cmd, o) },
	}
	o.api.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.rate, "rate", "50/s", "events per second in total, like 50 or 50/s (0 = as fast as the server answers)")
	f.IntVar(&o.gen.Media, "media", o.gen.Media, "media lifecycles to simulate")
	f.IntVar(&o.gen.Live, "live", o.gen.Live, "live-stream lifecycles to simulate")
	f.Float64Var(&o.gen.ErrorShare, "error-share", o.gen.ErrorShare, "share of media ending in error")
	f.Float64Var(&o.gen.AbortShare, "abort-share", o.gen.AbortShare, "share of media ending in aborted")
	f.Float64Var(&o.gen.SuspendShare, "suspend-share", o.gen.SuspendShare, "share of media passing through suspended")
	f.Float64Var(&o.gen.CancelShare, "cancel-share", o.gen.CancelShare, "share of live streams ending in live.cancelled")
	f.IntVar(&o.gen.ReconnectsMax, "reconnects-max", o.gen.ReconnectsMax, "most disconnected -> connected rounds of a live stream")
	f.IntVar(&o.concurrency, "concurrency", 4, "posts in flight at once")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long (0 = when every lifecycle is posted)")
	f.Uint64Var(&o.seed, "seed", 0, "seed of the generated ids and outcomes (default: random; printed at the end)")
	return cmd
}

// runSimulate runs `kinehook simulate`: it checks the project, posts the
// streams and prints the summary; it fails when any event failed.
func runSimulate(cmd *cobra.Command, o *simulateOptions) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, pid, err := o.api.setup(cmd)
	if err != nil {
		return err
	}
	if _, err := c.GetProject(ctx, pid); err != nil {
		return fmt.Errorf("check project %s: %w", pid, err)
	}
	rate, err := parseRate(o.rate)
	if err != nil {
		return err
	}
	seed := o.seed
	if !cmd.Flags().Changed("seed") {
		seed = randomSeed()
	}
	o.gen.Seed = seed
	rc := simulator.RunConfig{Rate: rate, Concurrency: o.concurrency}
	stats, err := runSimulation(ctx, c, pid, o.gen, rc, o.duration, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if o.api.json {
		if err := apiPrintJSON(cmd.OutOrStdout(), simSummaryJSON(stats, seed)); err != nil {
			return err
		}
	} else {
		writeSimSummary(cmd.OutOrStdout(), stats, seed)
	}
	if n := stats.Stats.Errors.Load(); n > 0 {
		return fmt.Errorf("%d events failed, %d lifecycles abandoned; last error: %w", n, stats.Stats.Abandoned.Load(), stats.Stats.LastError())
	}
	return nil
}

// randomSeed is a seed for the simulator when none is given.
func randomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])
}

// simResult is a finished simulation's numbers.
type simResult struct {
	Stats   *simulator.Stats
	Elapsed time.Duration
}

// simSender posts bodies through c, asking the runner to retry what the
// server throttled or could not take just now (429, 502, 503, 504), or what
// got no answer at all (a refused connection, a timeout): each event carries
// its idempotency key, so a retry never makes a second event.
func simSender(c *client.Client, pid string) simulator.Sender {
	return func(ctx context.Context, body []byte, key string) error {
		_, err := c.SendEventBody(ctx, pid, body, key)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var ae *client.Error
		if !errors.As(err, &ae) {
			return &simulator.RetryableError{Err: err}
		}
		switch ae.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return &simulator.RetryableError{Wait: ae.RetryAfter, Err: err}
		}
		return err
	}
}

// runSimulation posts the streams of cfg to project pid and draws progress on
// progress (a redrawn line on a terminal, a line every 5 s otherwise).
func runSimulation(ctx context.Context, c *client.Client, pid string, cfg simulator.Config, rc simulator.RunConfig, duration time.Duration, progress io.Writer) (*simResult, error) {
	gen, err := simulator.NewGenerator(cfg)
	if err != nil {
		return nil, err
	}
	if rc.RunID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		rc.RunID = "sim-" + hex.EncodeToString(b[:])
	}
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	stats := &simulator.Stats{}
	total := cfg.Media + cfg.Live
	start := time.Now()
	done := make(chan struct{})
	drawn := make(chan struct{})
	go func() {
		defer close(drawn)
		drawProgress(progress, isTerminal(progress), stats, total, start, done)
	}()
	err = simulator.Run(ctx, gen, simSender(c, pid), rc, stats)
	close(done)
	<-drawn
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	return &simResult{Stats: stats, Elapsed: time.Since(start)}, nil
}

// isTerminal reports whether w is a character device (an interactive terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressLine formats sent, rate, errors and lifecycles (complete, and
// abandoned at a failed event when there are any).
func progressLine(stats *simulator.Stats, total int, rate float64, elapsed time.Duration) string {
	lc := strconv.FormatInt(stats.Completed.Load(), 10)
	if total > 0 {
		lc += "/" + strconv.Itoa(total)
	}
	if n := stats.Abandoned.Load(); n > 0 {
		lc += fmt.Sprintf(" (%d abandoned)", n)
	}
	return fmt.Sprintf("%5.0fs  sent %d  rate %.1f/s  errors %d  throttled %d  lifecycles %s",
		elapsed.Seconds(), stats.Sent.Load(), rate, stats.Errors.Load(), stats.Throttled.Load(), lc)
}

// progressEvery is how often plain (non-terminal) progress lines are printed.
var progressEvery = 5 * time.Second

// drawProgress reports until done closes: on a terminal (tty) one line
// redrawn in place, otherwise a plain line every progressEvery.
func drawProgress(w io.Writer, tty bool, stats *simulator.Stats, total int, start time.Time, done <-chan struct{}) {
	every := progressEvery
	if tty {
		every = 250 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	lastSent, lastAt := int64(0), start
	for {
		select {
		case <-done:
			if tty {
				fmt.Fprint(w, "\r\x1b[K")
			}
			return
		case now := <-t.C:
			sent := stats.Sent.Load()
			// Smooth the rate over about a second on a terminal.
			if now.Sub(lastAt) < time.Second && tty {
				continue
			}
			rate := float64(sent-lastSent) / now.Sub(lastAt).Seconds()
			lastSent, lastAt = sent, now
			line := progressLine(stats, total, rate, now.Sub(start))
			if tty {
				fmt.Fprint(w, "\r\x1b[K"+line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
}

// writeSimSummary prints the final numbers of a simulation.
func writeSimSummary(w io.Writer, r *simResult, seed uint64) {
	s := r.Stats
	sent := s.Sent.Load()
	rate := 0.0
	if r.Elapsed > 0 {
		rate = float64(sent) / r.Elapsed.Seconds()
	}
	oc := s.Outcomes()
	fmt.Fprintf(w, "sent %d events in %s (%.1f/s), %d errors, %d throttled retries\n",
		sent, r.Elapsed.Round(time.Millisecond), rate, s.Errors.Load(), s.Throttled.Load())
	media := oc[simulator.OutcomeDone] + oc[simulator.OutcomeError] + oc[simulator.OutcomeAborted]
	live := oc[simulator.OutcomeFinished] + oc[simulator.OutcomeCancelled]
	ab := s.AbandonedByKind()
	abandoned := func(k simulator.Kind) string {
		if ab[k] == 0 {
			return ""
		}
		return fmt.Sprintf(", %d abandoned at a failed event", ab[k])
	}
	fmt.Fprintf(w, "media: %d complete (done %d, error %d, aborted %d; %d passed through suspended)%s\n",
		media, oc[simulator.OutcomeDone], oc[simulator.OutcomeError], oc[simulator.OutcomeAborted], oc["suspended"], abandoned(simulator.KindMedia))
	fmt.Fprintf(w, "live:  %d complete (finished %d, cancelled %d)%s\n", live, oc[simulator.OutcomeFinished], oc[simulator.OutcomeCancelled], abandoned(simulator.KindLive))
	if cut := s.Started.Load() - s.Completed.Load() - s.Abandoned.Load(); cut > 0 {
		fmt.Fprintf(w, "%d lifecycles were cut short by --duration or Ctrl-C\n", cut)
	}
	fmt.Fprintf(w, "seed: %d\n", seed)
}

// simSummary is the --json form of the final summary.
type simSummary struct {
	Sent      int64 `json:"sent"`
	Errors    int64 `json:"errors"`
	Throttled int64 `json:"throttled"`
	Started   int64 `json:"lifecycles_started"`
	Completed int64 `json:"lifecycles_completed"`
	// Abandoned are the lifecycles stopped at a failed event (by kind in
	// AbandonedBy); they are not in Completed nor in Outcomes.
	Abandoned   int64          `json:"lifecycles_abandoned"`
	AbandonedBy map[string]int `json:"abandoned"`
	Outcomes    map[string]int `json:"outcomes"`
	ElapsedSec  float64        `json:"elapsed_seconds"`
	Seed        uint64         `json:"seed"`
}

func simSummaryJSON(r *simResult, seed uint64) simSummary {
	s := r.Stats
	abandonedBy := map[string]int{string(simulator.KindMedia): 0, string(simulator.KindLive): 0}
	for k, n := range s.AbandonedByKind() {
		abandonedBy[string(k)] = n
	}
	return simSummary{
		Sent: s.Sent.Load(), Errors: s.Errors.Load(), Throttled: s.Throttled.Load(),
		Started: s.Started.Load(), Completed: s.Completed.Load(), Outcomes: s.Outcomes(),
		Abandoned: s.Abandoned.Load(), AbandonedBy: abandonedBy,
		ElapsedSec: r.Elapsed.Seconds(), Seed: seed,
	}
}
