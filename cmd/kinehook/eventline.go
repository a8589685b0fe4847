package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// eventLine is one event as `kinehook listen --server` and `kinehook
// trigger --server` print it: when, what, which resource and id, the
// answer's status and its latency (or the error).
type eventLine struct {
	Time     time.Time     `json:"time"`
	Event    string        `json:"event"`
	Resource string        `json:"resource,omitempty"`
	ID       string        `json:"id"`
	Status   int           `json:"status"`
	Attempt  int           `json:"attempt,omitempty"`
	Note     string        `json:"note,omitempty"`
	Duration time.Duration `json:"-"`
	Error    string        `json:"error,omitempty"`
}

// ANSI colours of the text lines.
const (
	ansiReset  = "\x1b[0m"
	ansiDim    = "\x1b[2m"
	ansiBold   = "\x1b[1m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[31m"
	ansiCyan   = "\x1b[36m"
)

// eventPrinter writes eventLines, one whole line at a time: text (coloured
// when w is a terminal and NO_COLOR is unset) or JSON.
type eventPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	json  bool
	color bool
}

func newEventPrinter(w io.Writer, asJSON bool) *eventPrinter {
	return &eventPrinter{w: w, json: asJSON, color: !asJSON && colorable(w)}
}

// colorable reports whether w is a terminal that wants colour: a character
// device, with NO_COLOR unset (https://no-color.org) and TERM not "dumb".
func colorable(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (p *eventPrinter) line(l eventLine) {
	var s string
	if p.json {
		b, _ := json.Marshal(struct {
			eventLine
			DurationMS float64 `json:"duration_ms"`
		}{l, float64(l.Duration.Microseconds()) / 1000})
		s = string(b)
	} else {
		s = l.text(p.color)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, s)
}

// text is the line for people, e.g.
// "10:31:02 media.update.status video_1 evt_... -> 200 12ms".
func (l eventLine) text(color bool) string {
	paint := func(code, s string) string {
		if !color || s == "" {
			return s
		}
		return code + s + ansiReset
	}
	var b strings.Builder
	b.WriteString(paint(ansiDim, l.Time.Format("15:04:05")))
	b.WriteString(" " + paint(ansiBold, l.Event))
	if l.Resource != "" {
		b.WriteString(" " + paint(ansiCyan, l.Resource))
	}
	b.WriteString(" " + l.ID + " -> ")
	switch {
	case l.Status == 0:
		b.WriteString(paint(ansiRed, "error: "+l.Error))
	case l.Status >= 200 && l.Status <= 299:
		b.WriteString(paint(ansiGreen, fmt.Sprint(l.Status)))
	case l.Status >= 500:
		b.WriteString(paint(ansiRed, fmt.Sprint(l.Status)))
	default:
		b.WriteString(paint(ansiYellow, fmt.Sprint(l.Status)))
	}
	if l.Attempt > 1 {
		fmt.Fprintf(&b, " (attempt %d)", l.Attempt)
	}
	if l.Note != "" {
		b.WriteString(" " + l.Note)
	}
	if l.Status != 0 && l.Error != "" {
		b.WriteString(" " + paint(ansiRed, l.Error))
	}
	fmt.Fprintf(&b, " %s", paint(ansiDim, l.Duration.Round(100*time.Microsecond).String()))
	return b.String()
}
