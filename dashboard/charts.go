package dashboard

import (
	"context"
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
)

// Charts are drawn here as inline SVG, on the server: no script library and
// nothing fetched from elsewhere. Every bucket carries data attributes with
// its figures (data-start, data-succeeded, data-failed, data-retried,
// data-p50, data-p99), so a test, or a curious operator, can read exactly
// what was drawn.

// statsView is the charts' card: the window's buckets as two SVG charts,
// the totals, and links to the other windows.
type statsView struct {
	Stats    *kinehook.Stats
	Windows  []string
	Outcomes template.HTML
	Latency  template.HTML
	// Path is the page's URL without query, for the window links.
	Path string
	// Anchor is the id the window links return to.
	Anchor string
}

// loadStats reads the statistics of an endpoint (eid) or of the whole
// project (eid empty) over the window the request asks for (?window=, 24h
// by default; an unknown value also shows 24h).
func (h *Handler) loadStats(ctx context.Context, pid, eid, window, path, anchor string) (*statsView, error) {
	if _, err := kinehook.ParseStatsWindow(window); err != nil {
		window = ""
	}
	var st *kinehook.Stats
	var err error
	if eid == "" {
		st, err = h.app.ProjectStats(ctx, pid, window)
	} else {
		st, err = h.app.EndpointStats(ctx, pid, eid, window)
	}
	if err != nil {
		return nil, fmt.Errorf("statistics: %w", err)
	}
	v := &statsView{Stats: st, Path: path, Anchor: anchor}
	for _, w := range []string{"1h", "24h", "7d"} {
		v.Windows = append(v.Windows, w)
	}
	v.Outcomes = outcomeChart(st)
	v.Latency = latencyChart(st)
	return v, nil
}

// Chart geometry (SVG user units; the SVG scales to its box).
const (
	chartW, chartH       = 720.0, 180.0
	padL, padR, padT     = 48.0, 8.0, 10.0
	padB                 = 22.0
	plotW, plotH         = chartW - padL - padR, chartH - padT - padB
	chartTimeLayout      = "15:04"
	chartDayTimeLayout   = "Jan 2 15:04"
	maxLabelledGridLines = 4
)

func f(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// bucketLabel is a bucket's time as the charts' tooltips show it.
func bucketLabel(st *kinehook.Stats, t time.Time) string {
	layout := chartTimeLayout
	if st.BucketSeconds >= 900 {
		layout = chartDayTimeLayout
	}
	return t.UTC().Format(layout) + " UTC"
}

// niceTop is a chart's top value: at least v, and maxLabelledGridLines
// times a step of 1, 2, 2.5, 3 or 5 times a power of ten, so every grid line
// has a round label (whole numbers for counts).
func niceTop(v float64, whole bool) float64 {
	step := v / maxLabelledGridLines
	if step <= 0 {
		step = 0.25
	}
	p := math.Pow(10, math.Floor(math.Log10(step)))
	for _, m := range []float64{1, 2, 2.5, 3, 5, 10} {
		if whole && m*p != math.Trunc(m*p) {
			continue
		}
		if m*p >= step {
			step = m * p
			break
		}
	}
	if whole {
		step = max(step, 1)
	}
	return step * maxLabelledGridLines
}

// axisValue prints a grid line's value: a fraction of the scale's top,
// rounded to what the scale's steps can be (0.6, not 0.6000000000000001,
// which ran off the chart's left edge).
func axisValue(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}

// axes writes the grid lines with their values and the first and last
// buckets' times.
func axes(b *strings.Builder, st *kinehook.Stats, top float64, unit string) {
	for i := 0; i <= maxLabelledGridLines; i++ {
		v := top * float64(i) / maxLabelledGridLines
		y := padT + plotH - plotH*float64(i)/maxLabelledGridLines
		fmt.Fprintf(b, `<line class="grid" x1="%s" y1="%s" x2="%s" y2="%s"/>`, f(padL), f(y), f(chartW-padR), f(y))
		fmt.Fprintf(b, `<text class="axis" x="%s" y="%s" text-anchor="end">%s%s</text>`, f(padL-4), f(y+4), axisValue(v), unit)
	}
	if n := len(st.Buckets); n > 0 {
		fmt.Fprintf(b, `<text class="axis" x="%s" y="%s">%s</text>`, f(padL), f(chartH-6), html.EscapeString(bucketLabel(st, st.Buckets[0].Start)))
		fmt.Fprintf(b, `<text class="axis" x="%s" y="%s" text-anchor="end">%s</text>`, f(chartW-padR), f(chartH-6), html.EscapeString(bucketLabel(st, st.Buckets[n-1].Start)))
	}
}

// outcomeChart draws the deliveries per bucket as stacked bars: succeeded
// at the bottom, then retried, then failed.
func outcomeChart(st *kinehook.Stats) template.HTML {
	var top int64
	for _, bk := range st.Buckets {
		top = max(top, bk.Succeeded+bk.Failed+bk.Retried)
	}
	scale := niceTop(float64(top), true)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart outcomes" viewBox="0 0 %s %s" role="img" aria-label="Deliveries per %s by outcome over %s" data-window="%s" data-bucket-seconds="%d">`,
		f(chartW), f(chartH), bucketName(st.BucketSeconds), st.Window, st.Window, st.BucketSeconds)
	axes(&b, st, scale, "")
	n := len(st.Buckets)
	slot := plotW / float64(max(n, 1))
	bar := max(slot*0.8, 1)
	for i, bk := range st.Buckets {
		x := padL + float64(i)*slot + (slot-bar)/2
		fmt.Fprintf(&b, `<g class="bucket" data-start="%s" data-succeeded="%d" data-failed="%d" data-retried="%d">`,
			bk.Start.UTC().Format(time.RFC3339), bk.Succeeded, bk.Failed, bk.Retried)
		fmt.Fprintf(&b, `<title>%s: %d succeeded, %d retried, %d failed</title>`, html.EscapeString(bucketLabel(st, bk.Start)), bk.Succeeded, bk.Retried, bk.Failed)
		// A transparent full-height target, so a tooltip shows over empty buckets too.
		fmt.Fprintf(&b, `<rect class="hit" x="%s" y="%s" width="%s" height="%s"/>`, f(padL+float64(i)*slot), f(padT), f(slot), f(plotH))
		y := padT + plotH
		for _, part := range []struct {
			class string
			n     int64
		}{{"succeeded", bk.Succeeded}, {"retried", bk.Retried}, {"failed", bk.Failed}} {
			if part.n == 0 {
				continue
			}
			hgt := plotH * float64(part.n) / scale
			y -= hgt
			fmt.Fprintf(&b, `<rect class="%s" x="%s" y="%s" width="%s" height="%s"/>`, part.class, f(x), f(y), f(bar), f(hgt))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // only numbers and escaped text
}

// latencyChart draws p50 and p99 per bucket as two lines, broken where a
// bucket had no attempt.
func latencyChart(st *kinehook.Stats) template.HTML {
	var top float64
	for _, bk := range st.Buckets {
		top = max(top, bk.P99MS, bk.P50MS)
	}
	scale := niceTop(top, false)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart latency" viewBox="0 0 %s %s" role="img" aria-label="Attempt latency p50 and p99 per %s over %s" data-window="%s" data-bucket-seconds="%d">`,
		f(chartW), f(chartH), bucketName(st.BucketSeconds), st.Window, st.Window, st.BucketSeconds)
	axes(&b, st, scale, " ms")
	n := len(st.Buckets)
	slot := plotW / float64(max(n, 1))
	point := func(i int, v float64) (float64, float64) {
		return padL + float64(i)*slot + slot/2, padT + plotH - plotH*v/scale
	}
	for _, line := range []struct {
		class string
		get   func(kinehook.StatsBucket) float64
	}{{"p50", func(bk kinehook.StatsBucket) float64 { return bk.P50MS }}, {"p99", func(bk kinehook.StatsBucket) float64 { return bk.P99MS }}} {
		var pts []string
		flush := func() {
			if len(pts) > 0 {
				fmt.Fprintf(&b, `<polyline class="%s" points="%s"/>`, line.class, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for i, bk := range st.Buckets {
			if bk.Succeeded+bk.Failed+bk.Retried == 0 {
				flush()
				continue
			}
			x, y := point(i, line.get(bk))
			pts = append(pts, f(x)+","+f(y))
		}
		flush()
	}
	for i, bk := range st.Buckets {
		if bk.Succeeded+bk.Failed+bk.Retried == 0 {
			continue
		}
		x, y50 := point(i, bk.P50MS)
		_, y99 := point(i, bk.P99MS)
		fmt.Fprintf(&b, `<g class="latency-point" data-start="%s" data-p50="%s" data-p99="%s"><title>%s: p50 %s ms, p99 %s ms</title>`,
			bk.Start.UTC().Format(time.RFC3339), strconv.FormatFloat(bk.P50MS, 'f', -1, 64), strconv.FormatFloat(bk.P99MS, 'f', -1, 64),
			html.EscapeString(bucketLabel(st, bk.Start)), strconv.FormatFloat(bk.P50MS, 'f', -1, 64), strconv.FormatFloat(bk.P99MS, 'f', -1, 64))
		fmt.Fprintf(&b, `<circle class="p99" cx="%s" cy="%s" r="2.5"/><circle class="p50" cx="%s" cy="%s" r="2.5"/></g>`, f(x), f(y99), f(x), f(y50))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // only numbers and escaped text
}

func bucketName(sec int64) string {
	switch sec {
	case 60:
		return "minute"
	case 900:
		return "15 minutes"
	case 3600:
		return "hour"
	}
	return strconv.FormatInt(sec, 10) + " s"
}

// healthBadge is one badge of an endpoint's breaker or pause state.
type healthBadge struct {
	Class, Text, Reason, Kind string
}

// healthBadges are the badges an endpoint's health earns at now: its
// breaker when not closed and its pause, each with the reason in words.
func healthBadges(e *kinehook.Endpoint, now time.Time) []healthBadge {
	hl := e.Health(now)
	var out []healthBadge
	when := func(t *time.Time) string { return t.UTC().Format("15:04:05 UTC") }
	switch hl.Breaker {
	case kinehook.BreakerOpen:
		reason := fmt.Sprintf("%d consecutive failures opened the circuit breaker", hl.ConsecutiveFailures)
		if hl.PausedUntil != nil {
			reason += "; the next probe goes at " + when(hl.PausedUntil)
		}
		out = append(out, healthBadge{Class: "bad", Kind: "breaker", Text: "breaker open", Reason: reason})
	case kinehook.BreakerHalfOpen:
		out = append(out, healthBadge{Class: "warn", Kind: "breaker", Text: "breaker half-open",
			Reason: fmt.Sprintf("after %d consecutive failures, one probe delivery goes; its success closes the breaker", hl.ConsecutiveFailures)})
	}
	if hl.Breaker == kinehook.BreakerClosed && hl.PausedUntil != nil {
		out = append(out, healthBadge{Class: "warn", Kind: "pause", Text: "paused until " + when(hl.PausedUntil),
			Reason: "the endpoint asked to slow down (Retry-After) or its rate limit holds deliveries back"})
	}
	return out
}
