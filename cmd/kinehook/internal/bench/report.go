package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// columns of the table, in order.
var columns = []string{"scenario", "endpoints", "events", "deliveries", "seconds", "deliveries/s", "x baseline",
	"p50 ms", "p99 ms", "max ms", "peak RSS MB", "CPU ms/1k", "alloc MB/1k", "scope", "target", "ok"}

// repeatColumns follow deliveries/s and CPU ms/1k when scenarios ran
// several times.
var repeatColumns = [2]string{"deliveries/s min-max", "CPU ms/1k min-max"}

// columns of this report's table: the ranges only for repeated runs.
func (r *Report) columns() []string {
	if r.Repeat <= 1 {
		return columns
	}
	return withRanges(columns, repeatColumns[0], repeatColumns[1])
}

// withRanges inserts the two range cells after deliveries/s and CPU ms/1k.
func withRanges(row []string, deliveries, cpu string) []string {
	out := make([]string, 0, len(row)+2)
	for i, c := range row {
		out = append(out, c)
		switch columns[i] {
		case "deliveries/s":
			out = append(out, deliveries)
		case "CPU ms/1k":
			out = append(out, cpu)
		}
	}
	return out
}

// cellsOf is a result's row in a table of report r.
func (r *Report) cellsOf(res *Result) []string {
	c := res.cells()
	if r.Repeat <= 1 {
		return c
	}
	rng := func(lo, hi float64) string {
		if lo == 0 && hi == 0 {
			return "-"
		}
		return strconv.FormatFloat(lo, 'f', 0, 64) + "-" + strconv.FormatFloat(hi, 'f', 0, 64)
	}
	return withRanges(c, rng(res.DeliveriesPerSecMin, res.DeliveriesPerSecMax), rng(res.CPUMsPer1kMin, res.CPUMsPer1kMax))
}

func (r *Result) cells() []string {
	f0 := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	opt := func(v float64, f func(float64) string) string {
		if v == 0 {
			return "-"
		}
		return f(v)
	}
	ok := "-"
	if r.Pass != nil {
		ok = map[bool]string{true: "yes", false: "NO"}[*r.Pass]
	}
	target := r.Target
	if target == "" {
		target = "-"
	}
	return []string{
		r.Scenario, strconv.Itoa(r.Endpoints), strconv.Itoa(r.Events), strconv.Itoa(r.Deliveries), f2(r.Seconds),
		opt(r.DeliveriesPerSec, f0), opt(r.Ratio, f2), opt(r.P50Ms, f2), opt(r.P99Ms, f2), opt(r.MaxMs, f2),
		opt(r.PeakRSSMB, f1), opt(r.CPUMsPer1k, f0), opt(r.AllocMBPer1k, f1), r.RSSScope, target, ok,
	}
}

// header is the run's context: backend, machine, load.
func (r *Report) header() string {
	runs := ""
	if r.Repeat > 1 {
		runs = fmt.Sprintf(", median of %d runs per scenario", r.Repeat)
	}
	return fmt.Sprintf("kinehook bench: backend %s, %d CPUs, %s, %d events, %d clients%s, load average %s -> %s",
		r.Backend, r.CPUs, r.GoVersion, r.Events, r.Concurrency, runs, r.LoadBefore, r.LoadAfter)
}

// serverCPU states the server's own CPU per delivery of each scenario that
// measured a server process, and why it was not measured where it was not.
func (r *Report) serverCPU() []string {
	var figs, notes []string
	pids := map[int]bool{}
	for _, res := range r.Results {
		if res.CPUNotMeasured != "" && !slices.Contains(notes, res.CPUNotMeasured) {
			notes = append(notes, res.CPUNotMeasured)
		}
		if res.RSSScope != "server" || res.CPUMsPer1k <= 0 || res.Scenario == Backlog {
			continue
		}
		pids[res.ServerPID] = true
		f := fmt.Sprintf("%s %.0f us", res.Scenario, res.CPUMsPer1k)
		if res.CPUMsPer1kMax > 0 {
			f += fmt.Sprintf(" (%.0f-%.0f)", res.CPUMsPer1kMin, res.CPUMsPer1kMax)
		}
		figs = append(figs, f)
	}
	var lines []string
	if len(figs) > 0 {
		who := "pid " + strconv.Itoa(slices.Collect(maps.Keys(pids))[0])
		if len(pids) > 1 {
			who = "a fresh process per scenario"
		}
		runs := ""
		if r.Repeat > 1 {
			runs = fmt.Sprintf(", median of %d runs (min-max)", r.Repeat)
		}
		lines = append(lines, fmt.Sprintf("server CPU per delivery (%s; user+system from /proc/PID/stat over the measured interval / deliveries%s): %s",
			who, runs, strings.Join(figs, ", ")))
	}
	for _, n := range notes {
		lines = append(lines, "server CPU per delivery not measured: "+n)
	}
	return lines
}

// footer states the ratios to the plain client and to the relay, when they ran.
func (r *Report) footer() string {
	var base, thr, rel, thrCPU, relCPU, bat, nats, natsCPU, ing float64
	var thrScope string
	for _, res := range r.Results {
		switch res.Scenario {
		case Baseline:
			base = res.DeliveriesPerSec
		case Throughput:
			thr, thrCPU, thrScope = res.DeliveriesPerSec, res.CPUMsPer1k, res.RSSScope
		case Relay:
			rel, relCPU = res.DeliveriesPerSec, res.CPUMsPer1k
		case Batch:
			bat = res.DeliveriesPerSec
		case NATSDest:
			nats, natsCPU = res.DeliveriesPerSec, res.CPUMsPer1k
		case NATSIngest:
			ing = res.DeliveriesPerSec
		}
	}
	lines := r.serverCPU()
	if nats > 0 && thr > 0 {
		l := fmt.Sprintf("NATS JetStream destination %.0f deliveries/s (each acknowledged by the stream) vs HTTP endpoint %.0f = %.2f of it", nats, thr, nats/thr)
		if natsCPU > 0 && thrCPU > 0 {
			l += fmt.Sprintf("; CPU per delivery %.0f us vs %.0f us", natsCPU, thrCPU)
		}
		lines = append(lines, l)
	}
	if base > 0 && thr > 0 {
		lines = append(lines, fmt.Sprintf("plain Go client ceiling %.0f requests/s; kinehook one endpoint %.0f deliveries/s = %.2f of it (goal >= 0.3 on SQLite)",
			base, thr, thr/base))
	}
	if base > 0 && bat > 0 {
		lines = append(lines, fmt.Sprintf("events posted %d per request (POST .../events/batch): kinehook one endpoint %.0f deliveries/s = %.2f of the plain client",
			r.BatchSize, bat, bat/base))
	}
	if rel > 0 && thr > 0 {
		l := fmt.Sprintf("storeless relay (HTTP in, HTTP out) %.0f deliveries/s; kinehook one endpoint = %.2f of it", rel, thr/rel)
		if thrScope == "process" && thrCPU > 0 && relCPU > 0 {
			// Both figures cover load generator, server and sink in this
			// process: the difference is what kinehook adds per delivery.
			l += fmt.Sprintf("; CPU per delivery %.0f us vs the relay's %.0f us (+%.0f us for validation, the store, ordering and retries)",
				thrCPU, relCPU, thrCPU-relCPU)
		}
		lines = append(lines, l)
	}
	if ing > 0 {
		l := fmt.Sprintf("NATS ingest (events published to JetStream, taken by serve --source, delivered to one endpoint) %.0f deliveries/s", ing)
		if thr > 0 {
			l += fmt.Sprintf("; HTTP ingest (POST .../events, one endpoint) %.0f deliveries/s in the same run: NATS = %.2f of it", thr, ing/thr)
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// WriteTable prints the report as an aligned text table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, r.header())
	fmt.Fprintln(tw, strings.Join(r.columns(), "\t"))
	for i := range r.Results {
		fmt.Fprintln(tw, strings.Join(r.cellsOf(&r.Results[i]), "\t"))
	}
	if f := r.footer(); f != "" {
		fmt.Fprintln(tw, f)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// WriteMarkdown prints the report as a Markdown table (for docs/performance.md).
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", r.header())
	cols := r.columns()
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	for i := range r.Results {
		fmt.Fprintf(&b, "| %s |\n", strings.Join(r.cellsOf(&r.Results[i]), " | "))
	}
	if f := r.footer(); f != "" {
		fmt.Fprintf(&b, "\n%s\n", f)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// WriteJSON prints the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}
