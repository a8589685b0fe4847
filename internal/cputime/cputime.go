// Package cputime reads CPU time for benchmarks that report cost per
// operation: on a shared machine CPU time says more than wall time.
package cputime

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Machine is the busy CPU time of the whole machine so far (user, nice,
// system, irq and softirq from /proc/stat), or false where it cannot be read.
func Machine() (time.Duration, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseStat(string(data))
}

// parseStat reads the machine's busy time from /proc/stat's first line.
func parseStat(stat string) (time.Duration, bool) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += v
	}
	return time.Duration(ticks) * 10 * time.Millisecond, true // USER_HZ = 100
}
