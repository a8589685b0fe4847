package kinehook

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Delivery statistics are kept as rollups: every RecordAttempts commit adds
// its attempts to per-(endpoint, bucket) counters in the same transaction,
// so a statistics request reads a few hundred rows, never the attempts.

// LatencyBoundsMS are the upper bounds, in milliseconds, of the latency
// histogram kept with each bucket; a last, open bin holds slower attempts.
// They are fixed: stored rows have one column per bin.
var LatencyBoundsMS = [...]float64{1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
	1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 30000, 60000}

// LatencyBins is the number of bins of the latency histogram.
const LatencyBins = len(LatencyBoundsMS) + 1

// StatsCounts are the counters of one bucket (or of a window).
//
//   - Succeeded counts attempts that succeeded (each ends its delivery).
//   - Failed counts deliveries that failed for good: attempts after which no
//     further attempt will be made.
//   - Retried counts attempts that did not succeed and will be tried again
//     (failures on the retry schedule and Retry-After back-offs).
//
// Latency is the histogram of every attempt's duration (whatever its
// outcome), MinMS and MaxMS the fastest and the slowest.
type StatsCounts struct {
	Succeeded, Failed, Retried int64
	Latency                    [LatencyBins]int64
	MinMS, MaxMS               float64
}

// Add counts one attempt result.
func (c *StatsCounts) Add(r *AttemptResult) {
	switch r.Status {
	case DeliverySucceeded:
		c.Succeeded++
	case DeliveryFailed:
		c.Failed++
	default:
		c.Retried++
	}
	ms := r.Attempt.DurationMS
	if c.Attempts() == 0 || ms < c.MinMS {
		c.MinMS = ms
	}
	c.Latency[LatencyBin(ms)]++
	c.MaxMS = max(c.MaxMS, ms)
}

// Merge adds o's counters to c.
func (c *StatsCounts) Merge(o *StatsCounts) {
	if o.Attempts() > 0 && (c.Attempts() == 0 || o.MinMS < c.MinMS) {
		c.MinMS = o.MinMS
	}
	c.Succeeded += o.Succeeded
	c.Failed += o.Failed
	c.Retried += o.Retried
	for i := range c.Latency {
		c.Latency[i] += o.Latency[i]
	}
	c.MaxMS = max(c.MaxMS, o.MaxMS)
}

// Attempts is the number of attempts counted in the latency histogram.
func (c *StatsCounts) Attempts() int64 {
	var n int64
	for _, v := range c.Latency {
		n += v
	}
	return n
}

// LatencyBin is the histogram bin of a duration in milliseconds.
func LatencyBin(ms float64) int {
	i, _ := slices.BinarySearch(LatencyBoundsMS[:], ms)
	return i
}

// Quantile estimates the q-quantile (0 < q <= 1) of the latency in
// milliseconds from the histogram: linear within the bin that holds it,
// that bin narrowed to [MinMS, MaxMS]. 0 when nothing was counted.
func (c *StatsCounts) Quantile(q float64) float64 {
	n := c.Attempts()
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var seen float64
	for i, v := range c.Latency {
		if v == 0 {
			continue
		}
		if seen+float64(v) >= rank {
			lo := c.MinMS
			if i > 0 {
				lo = max(LatencyBoundsMS[i-1], c.MinMS)
			}
			hi := c.MaxMS
			if i < len(LatencyBoundsMS) {
				hi = min(LatencyBoundsMS[i], c.MaxMS)
			}
			hi = max(hi, lo)
			v := lo + (hi-lo)*(rank-seen)/float64(v)
			return float64(int64(v*1000+0.5)) / 1000 // microsecond precision
		}
		seen += float64(v)
	}
	return c.MaxMS
}

// StatsResolution is one size of stored bucket and how long its rows are kept.
type StatsResolution struct {
	Seconds int64
	Keep    time.Duration
}

// StatsResolutions are the rollups every store keeps: minutes for the last
// hour, quarter hours for the last day, hours for the last week. Each
// recorded attempt adds to one bucket of each. The retention cleaner drops
// rows older than Keep (Store.PruneStats).
var StatsResolutions = []StatsResolution{
	{Seconds: 60, Keep: 3 * time.Hour},
	{Seconds: 900, Keep: 26 * time.Hour},
	{Seconds: 3600, Keep: 8 * 24 * time.Hour},
}

// StatsWindow is a window the statistics API answers for.
type StatsWindow struct {
	Name          string
	Length        time.Duration
	BucketSeconds int64
}

// Buckets is the number of buckets of the window.
func (w StatsWindow) Buckets() int {
	return int(w.Length / (time.Duration(w.BucketSeconds) * time.Second))
}

// StatsWindows are the windows of the statistics API, the first one the
// default.
var StatsWindows = []StatsWindow{
	{Name: "24h", Length: 24 * time.Hour, BucketSeconds: 900},
	{Name: "1h", Length: time.Hour, BucketSeconds: 60},
	{Name: "7d", Length: 7 * 24 * time.Hour, BucketSeconds: 3600},
}

// ParseStatsWindow finds a window by name ("" is the default, 24h).
func ParseStatsWindow(name string) (StatsWindow, error) {
	if name == "" {
		return StatsWindows[0], nil
	}
	for _, w := range StatsWindows {
		if w.Name == name {
			return w, nil
		}
	}
	return StatsWindow{}, &Error{Code: EMALFORMED, Field: "window", Message: fmt.Sprintf("window must be one of 1h, 24h, 7d; got %q", name)}
}

// StatsKey names one stored bucket: an endpoint's counters for the bucket of
// BucketSeconds starting at Start (unix seconds, a multiple of BucketSeconds).
type StatsKey struct {
	EndpointID    string
	BucketSeconds int64
	Start         int64
	ProjectID     string
}

// StatsIncrement is what one commit adds to one stored bucket.
type StatsIncrement struct {
	Key    StatsKey
	Counts StatsCounts
}

// RollupAttempts aggregates a batch of results into one increment per
// (endpoint, resolution, bucket), sorted by key (so concurrent writers take
// row locks in one order). Each result must carry its EndpointID and
// ProjectID; when at is zero the attempt counts at now.
func RollupAttempts(results []AttemptResult, now time.Time) []StatsIncrement {
	// A batch mostly touches few buckets (its endpoints, in one or two
	// minutes): a linear search beats a map and allocates nothing; past
	// linearMax buckets, a map takes over.
	const linearMax = 16
	out := make([]StatsIncrement, 0, 3*len(StatsResolutions))
	var idx map[StatsKey]int
	for i := range results {
		r := &results[i]
		at := r.Attempt.AttemptedAt
		if at.IsZero() {
			at = now
		}
		sec := at.Unix()
		for _, res := range StatsResolutions {
			k := StatsKey{EndpointID: r.EndpointID, ProjectID: r.ProjectID, BucketSeconds: res.Seconds, Start: sec - mod(sec, res.Seconds)}
			j := -1
			if idx != nil {
				if v, ok := idx[k]; ok {
					j = v
				}
			} else {
				for j = len(out) - 1; j >= 0 && out[j].Key != k; j-- {
				}
			}
			if j < 0 {
				j = len(out)
				out = append(out, StatsIncrement{Key: k})
				if idx != nil {
					idx[k] = j
				} else if len(out) > linearMax {
					idx = make(map[StatsKey]int, 2*len(out))
					for n := range out {
						idx[out[n].Key] = n
					}
				}
			}
			out[j].Counts.Add(r)
		}
	}
	slices.SortFunc(out, func(a, b StatsIncrement) int {
		return cmp.Or(cmp.Compare(a.Key.EndpointID, b.Key.EndpointID), cmp.Compare(a.Key.BucketSeconds, b.Key.BucketSeconds),
			cmp.Compare(a.Key.Start, b.Key.Start))
	})
	return out
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// StatsQuery selects stored buckets: those of one resolution (BucketSeconds)
// starting in [From, To), of one endpoint or, EndpointID empty, summed over
// every endpoint of the project.
type StatsQuery struct {
	ProjectID     string
	EndpointID    string
	BucketSeconds int64
	From, To      time.Time
}

// StatsRow is one stored bucket (summed over endpoints for a project).
type StatsRow struct {
	Start  time.Time
	Counts StatsCounts
}

// StatsBucket is one bucket of a statistics answer.
type StatsBucket struct {
	Start     time.Time `json:"start"`
	Succeeded int64     `json:"succeeded"`
	Failed    int64     `json:"failed"`
	Retried   int64     `json:"retried"`
	P50MS     float64   `json:"p50_ms"`
	P99MS     float64   `json:"p99_ms"`
}

// StatsTotals are the counters and latency quantiles of a whole window.
type StatsTotals struct {
	Succeeded int64   `json:"succeeded"`
	Failed    int64   `json:"failed"`
	Retried   int64   `json:"retried"`
	P50MS     float64 `json:"p50_ms"`
	P99MS     float64 `json:"p99_ms"`
}

// Stats is the answer of the statistics API: every bucket of the window,
// oldest first, zeros where nothing happened.
type Stats struct {
	Window        string        `json:"window"`
	BucketSeconds int64         `json:"bucket_seconds"`
	Buckets       []StatsBucket `json:"buckets"`
	Totals        StatsTotals   `json:"totals"`
}

// StatsRange is the span of a window ending now: its last bucket is the one
// holding now, its first starts Buckets()-1 buckets earlier.
func StatsRange(w StatsWindow, now time.Time) (from, to time.Time) {
	sec := now.Unix()
	last := sec - mod(sec, w.BucketSeconds)
	first := last - int64(w.Buckets()-1)*w.BucketSeconds
	return time.Unix(first, 0).UTC(), time.Unix(last+w.BucketSeconds, 0).UTC()
}

// BuildStats lays stored rows out over the window ending now.
func BuildStats(w StatsWindow, now time.Time, rows []StatsRow) *Stats {
	from, _ := StatsRange(w, now)
	n := w.Buckets()
	counts := make([]StatsCounts, n)
	var total StatsCounts
	for i := range rows {
		j := int((rows[i].Start.Unix() - from.Unix()) / w.BucketSeconds)
		if j < 0 || j >= n {
			continue
		}
		counts[j].Merge(&rows[i].Counts)
		total.Merge(&rows[i].Counts)
	}
	out := &Stats{Window: w.Name, BucketSeconds: w.BucketSeconds, Buckets: make([]StatsBucket, n)}
	for j := range counts {
		c := &counts[j]
		out.Buckets[j] = StatsBucket{Start: from.Add(time.Duration(int64(j)*w.BucketSeconds) * time.Second),
			Succeeded: c.Succeeded, Failed: c.Failed, Retried: c.Retried, P50MS: c.Quantile(0.5), P99MS: c.Quantile(0.99)}
	}
	out.Totals = StatsTotals{Succeeded: total.Succeeded, Failed: total.Failed, Retried: total.Retried,
		P50MS: total.Quantile(0.5), P99MS: total.Quantile(0.99)}
	return out
}
