// Package storehealth tells a store outage (a full disk, a lost database
// connection, a read-only or failing disk) from the errors of single
// operations, so that the server can say so once instead of once per failed
// request or loop turn.
//
// A store owns one Tracker. Whoever sees a store error hands it to Fail: the
// first failure of an outage logs "store unavailable" at ERROR and marks the
// store down (readiness fails, the API answers 503); later failures are only
// counted. While down, the Tracker probes the store with a small write every
// second; the first probe that succeeds logs "store recovered" once, with the
// count of what failed meanwhile, and readiness returns. Successes cost
// nothing: only error paths and the probe touch the Tracker.
package storehealth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kinehook/kinehook"
)

// DefaultInterval is how often a down store is probed.
const DefaultInterval = time.Second

// RetryAfter is the Retry-After the API gives while the store is down: a few
// probes, so a client that waits that long usually finds it back.
const RetryAfter = 5 * time.Second

// Config configures a Tracker.
type Config struct {
	// Name names the store in log lines ("sqlite", "postgres").
	Name string
	// Classify returns kinehook.ESTORAGEFULL or kinehook.ESTOREUNAVAILABLE
	// for an error that says the store as a whole cannot work, "" for any
	// other (a constraint, a bad query, a missing row).
	Classify func(error) string
	// Probe makes one small write; nil means the store cannot tell, and a
	// down store then stays down until Close.
	Probe func(context.Context) error
	// Logger receives the two lines of an outage (nil: slog.Default()).
	Logger *slog.Logger
	// Interval is how often a down store is probed (0 = DefaultInterval).
	Interval time.Duration
}

// Status is what a Tracker knows at one moment.
type Status struct {
	// Down is true from the first failure of an outage until a probe
	// succeeds.
	Down bool
	// Code is kinehook.ESTORAGEFULL or kinehook.ESTOREUNAVAILABLE while down.
	Code string
	// Since is when the outage began.
	Since time.Time
	// Failed counts the failures seen during the outage (the first included).
	Failed int64
	// Err is the text of the first failure.
	Err string
}

// Tracker follows one store's health. The zero value is not usable; a nil
// *Tracker is (it classifies nothing), so callers need not check.
type Tracker struct {
	cfg  Config
	log  *slog.Logger
	down atomic.Bool

	mu      sync.Mutex
	st      Status
	probing bool
	closed  bool
	stop    chan struct{}
	done    sync.WaitGroup
}

// New returns a Tracker for one store.
func New(cfg Config) *Tracker {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Name != "" {
		log = log.With("store", cfg.Name)
	}
	return &Tracker{cfg: cfg, log: log, stop: make(chan struct{})}
}

var _ kinehook.StoreHealth = (*Tracker)(nil)

// Fail takes an error of a store operation. When err says the store is out
// (Config.Classify), it counts the failure, marks the store down (logging
// that once per outage) and returns the API error code to answer with;
// otherwise it returns "" and the caller handles err as before. A timeout
// while the store is already down counts as part of the outage.
func (t *Tracker) Fail(err error) string {
	if t == nil || err == nil || errors.Is(err, context.Canceled) {
		return ""
	}
	code := t.classify(err)
	if code == "" {
		if !t.down.Load() || !errors.Is(err, context.DeadlineExceeded) {
			return ""
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.st.Down {
		t.st.Failed++
		if code == kinehook.ESTORAGEFULL {
			// The more precise reason wins: a full disk is what to fix.
			t.st.Code = code
		}
		return t.st.Code
	}
	if code == "" {
		return ""
	}
	t.st = Status{Down: true, Code: code, Since: time.Now(), Failed: 1, Err: err.Error()}
	t.down.Store(true)
	t.log.Error("store unavailable: "+describe(code)+"; answering 503 and failing readiness until a probe write succeeds",
		"code", code, "err", err)
	if !t.probing && !t.closed && t.cfg.Probe != nil {
		t.probing = true
		t.done.Add(1)
		go t.probeLoop()
	}
	return code
}

// classify is Config.Classify, plus what the operating system says the same
// way for every store.
func (t *Tracker) classify(err error) string {
	if t.cfg.Classify != nil {
		if c := t.cfg.Classify(err); c != "" {
			return c
		}
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return kinehook.ESTORAGEFULL
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EIO):
		return kinehook.ESTOREUNAVAILABLE
	}
	return ""
}

// Down reports whether the store is down (one atomic load).
func (t *Tracker) Down() bool { return t != nil && t.down.Load() }

// Outage returns the code of the outage under way, "" while the store works
// (kinehook.StoreHealth).
func (t *Tracker) Outage() string {
	if !t.Down() {
		return ""
	}
	return t.Status().Code
}

// Status returns what the Tracker knows now.
func (t *Tracker) Status() Status {
	if t == nil {
		return Status{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// Error is the API error of an outage with the given code.
func Error(code string) *kinehook.Error {
	return &kinehook.Error{Code: code, Message: describe(code) + "; retry later"}
}

func describe(code string) string {
	if code == kinehook.ESTORAGEFULL {
		return "the store's disk is full: nothing can be written"
	}
	return "the store cannot be reached or cannot write"
}

// Close stops probing (the store is closing).
func (t *Tracker) Close() {
	if t == nil {
		return
	}
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.stop)
	}
	t.mu.Unlock()
	t.done.Wait()
}

// probeLoop probes a down store until a write succeeds or Close: the first
// probe soon (a lone broken connection is replaced at once), then every
// Interval.
func (t *Tracker) probeLoop() {
	defer t.done.Done()
	wait := min(t.cfg.Interval, 200*time.Millisecond)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-t.stop:
			t.mu.Lock()
			t.probing = false
			t.mu.Unlock()
			return
		case <-timer.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), max(t.cfg.Interval, 5*time.Second))
		err := t.cfg.Probe(ctx)
		cancel()
		if err == nil {
			t.mu.Lock()
			st := t.st
			// Logged before the store counts as up again, so whoever sees
			// it up (readiness, a test) also sees the line.
			t.log.Info("store recovered: writes succeed again", "code", st.Code,
				"failed_meanwhile", st.Failed, "down_for", time.Since(st.Since).Round(time.Millisecond).String())
			t.st = Status{}
			t.down.Store(false)
			t.probing = false
			t.mu.Unlock()
			return
		}
		t.log.Debug("store probe failed", "err", err)
		timer.Reset(t.cfg.Interval)
	}
}
