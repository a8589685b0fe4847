package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/kinehook/kinehook"
	"github.com/kinehook/kinehook/internal/netguard"
	"github.com/kinehook/kinehook/source"
)

// serveFlags are serve's flags checked and parsed, before anything is
// opened or started.
type serveFlags struct {
	log      *slog.Logger
	schedule []time.Duration
	adminKey string // --admin-key, else the environment's
	cidrs    []netip.Prefix
	memLimit int64
	sources  []source.Spec
}

// parseServeFlags checks serve's options and parses those that need it,
// in the order their errors were always reported.
func parseServeFlags(o *serveOptions, stderr io.Writer) (*serveFlags, error) {
	log, err := newServeLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return nil, err
	}
	schedule, err := parseRetrySchedule(o.retrySchedule)
	if err != nil {
		return nil, err
	}
	if err := checkServeLimits(o); err != nil {
		return nil, err
	}
	adminKey := o.adminKey
	if adminKey == "" {
		adminKey = os.Getenv(serveAdminKeyEnv)
	}
	if err := checkAdminKey(adminKey); err != nil {
		return nil, err // before the store is opened or created
	}
	cidrs, err := netguard.ParseCIDRs(o.allowCIDR)
	if err != nil {
		return nil, fmt.Errorf("--allow-cidr: %w", err)
	}
	memLimit, err := parseByteSize(o.memoryLimit)
	if err != nil {
		return nil, fmt.Errorf("--memory-limit: %w", err)
	}
	if o.gcPercent < 0 {
		return nil, fmt.Errorf("--gc-percent %d: must be 0 (Go's default) or more (GOGC=off turns the collector off)", o.gcPercent)
	}
	sources, err := parseSourceFlags(o.sources, o.sourcesFile)
	if err != nil {
		return nil, err
	}
	if o.rejectedKeep < 0 || o.rejectedDays < 0 {
		return nil, errors.New("--rejected-keep and --rejected-days must not be negative")
	}
	return &serveFlags{log: log, schedule: schedule, adminKey: adminKey, cidrs: cidrs, memLimit: memLimit, sources: sources}, nil
}

// checkServeLimits checks the address, timeouts and thresholds of serve.
func checkServeLimits(o *serveOptions) error {
	if strings.TrimSpace(o.addr) == "" {
		// net.Listen would take every interface and a random port.
		return errors.New("--addr is empty: give host:port, e.g. 127.0.0.1:8080 (0.0.0.0:8080 for every interface)")
	}
	if o.requestTimeout <= 0 {
		return errors.New("--request-timeout must be positive")
	}
	if o.retentionDays < 0 || o.retentionDays > kinehook.MaxRetentionDays || o.retentionEvery < 0 {
		return fmt.Errorf("--retention-days must be 0 to %d and --retention-interval not negative", kinehook.MaxRetentionDays)
	}
	if o.breakerAfter < 0 || o.disableAfter < 0 {
		return errors.New("--breaker-threshold and --disable-after must not be negative")
	}
	return nil
}
