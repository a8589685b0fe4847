package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kinehook/kinehook"
)

// idPlaceholder marks where each event's video id goes in the body template.
const idPlaceholder = "KINEHOOK-BENCH-ID"

// bodies makes media.update.status bodies, each about a different video, so
// that per-resource ordering never serializes the benchmark's deliveries.
type bodies struct {
	head, tail []byte
	run        string
}

func newBodies() (*bodies, error) {
	var ev struct {
		Event string         `json:"event"`
		Data  map[string]any `json:"data"`
	}
	if err := json.Unmarshal(kinehook.SampleEvent(kinehook.EventMediaUpdateStatus), &ev); err != nil {
		return nil, fmt.Errorf("sample event: %w", err)
	}
	ev.Data["id"] = idPlaceholder
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("body template: %w", err)
	}
	head, tail, ok := bytes.Cut(b, []byte(idPlaceholder))
	if !ok {
		return nil, fmt.Errorf("body template lost its id placeholder: %s", b)
	}
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, fmt.Errorf("run id: %w", err)
	}
	return &bodies{head: head, tail: tail, run: hex.EncodeToString(r[:])}, nil
}

// body i carries the UUID-shaped video id <run>-0000-4000-8000-<i>.
func (b *bodies) body(i int) []byte {
	out := make([]byte, 0, len(b.head)+len(b.tail)+36)
	out = append(out, b.head...)
	out = append(out, b.run...)
	out = append(out, "-0000-4000-8000-"...)
	out = fmt.Appendf(out, "%012x", i)
	return append(out, b.tail...)
}

// newHTTPClient is a keep-alive client with enough idle connections for
// conc concurrent requests to one host.
func newHTTPClient(conc int) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        2 * conc,
			MaxIdleConnsPerHost: 2 * conc,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// poster posts events to one project through the real API.
type poster struct {
	hc     *http.Client
	url    string
	auth   string
	bodies *bodies
	// batch > 0 makes postAll send that many events per request to
	// POST .../events/batch.
	batch int
}

func newPoster(baseURL, projectID, key string, conc int) (*poster, error) {
	b, err := newBodies()
	if err != nil {
		return nil, err
	}
	return &poster{
		hc:     newHTTPClient(conc),
		url:    baseURL + "/v1/projects/" + projectID + "/events",
		auth:   "Bearer " + key,
		bodies: b,
	}, nil
}

// post sends event i and returns its id, once the server answered 202.
func (p *poster) post(ctx context.Context, i int) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(p.bodies.body(i)))
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", p.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("post event: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("post event: %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.ID == "" {
		return "", fmt.Errorf("post event: answer without an id: %s", data)
	}
	return out.ID, nil
}

// failures counts failed requests and keeps the first error.
type failures struct {
	n     atomic.Int64
	once  sync.Once
	first error
}

func (f *failures) add(err error) {
	f.n.Add(1)
	f.once.Do(func() { f.first = err })
}

// err summarizes the failures of total requests, or nil.
func (f *failures) err(total int) error {
	if n := f.n.Load(); n > 0 {
		return fmt.Errorf("%d of %d requests failed, first: %w", n, total, f.first)
	}
	return nil
}

// postAll posts events 0..n-1 with conc concurrent clients and returns the
// number accepted.
func (p *poster) postAll(ctx context.Context, n, conc int, fails *failures) int {
	if p.batch > 0 {
		size := p.batch
		chunks := (n + size - 1) / size
		var accepted atomic.Int64
		forEach(ctx, chunks, conc, fails, func(c int) error {
			from, to := c*size, min(n, (c+1)*size)
			if err := p.postBatch(ctx, from, to); err != nil {
				return err
			}
			accepted.Add(int64(to - from))
			return nil
		})
		return int(accepted.Load())
	}
	return forEach(ctx, n, conc, fails, func(i int) error {
		_, err := p.post(ctx, i)
		return err
	})
}

// postBatch sends events from..to-1 in one request to the batch route.
func (p *poster) postBatch(ctx context.Context, from, to int) error {
	buf := make([]byte, 0, (to-from)*(len(p.bodies.head)+len(p.bodies.tail)+40)+16)
	buf = append(buf, `{"events":[`...)
	for i := from; i < to; i++ {
		if i > from {
			buf = append(buf, ',')
		}
		buf = append(buf, p.bodies.body(i)...)
	}
	buf = append(buf, "]}"...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/batch", bytes.NewReader(buf))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", p.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("post batch: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("post batch: %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var out struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &out); err != nil || len(out.Data) != to-from {
		return fmt.Errorf("post batch: answer without %d events: %.200s", to-from, data)
	}
	return nil
}

// forEach runs do(0..n-1) on conc goroutines taking the next index as they
// finish (the kinehook load and the plain-client baseline share it, so they
// are driven alike) and returns how many succeeded; failures are counted.
func forEach(ctx context.Context, n, conc int, fails *failures, do func(i int) error) int {
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	for range min(conc, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := do(i); err != nil {
					fails.add(err)
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ok.Load())
}

// sent is one event of the latency scenario: its id and when its POST began.
type sent struct {
	id    string
	start time.Time
}

// postAtRate posts rate events per second for d, each as its own request
// started on schedule (up to conc at once), and returns what was accepted.
func (p *poster) postAtRate(ctx context.Context, rate int, d time.Duration, conc int, fails *failures) []sent {
	n := int(float64(rate) * d.Seconds())
	out := make([]sent, n)
	jobs := make(chan int, n)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := range jobs {
				start := time.Now()
				id, err := p.post(ctx, i)
				if err != nil {
					fails.add(err)
					continue
				}
				out[i] = sent{id: id, start: start}
			}
		})
	}
	t0 := time.Now()
	for i := range n {
		due := t0.Add(time.Duration(float64(i) * float64(time.Second) / float64(rate)))
		if w := time.Until(due); w > 0 {
			select {
			case <-time.After(w):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	kept := out[:0]
	for _, s := range out {
		if s.id != "" {
			kept = append(kept, s)
		}
	}
	return kept
}

// baselineSecret signs the plain client's webhooks (any whsec_ secret does).
const baselineSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// postSigned is the plain client of the baseline: n signed webhooks, exactly
// as kinehook sends them (body, webhook-id/-timestamp/-signature headers),
// to url with conc concurrent keep-alive clients. It returns the number the
// sink answered 2xx.
func postSigned(ctx context.Context, url string, n, conc int, fails *failures) (int, error) {
	b, err := newBodies()
	if err != nil {
		return 0, err
	}
	hc := newHTTPClient(conc)
	return forEach(ctx, n, conc, fails, func(i int) error {
		return sendSigned(ctx, hc, url, "msg_"+b.run+strconv.Itoa(i), b.body(i))
	}), nil
}

func sendSigned(ctx context.Context, hc *http.Client, url, id string, body []byte) error {
	now := time.Now()
	sig, err := kinehook.Sign([]string{baselineSecret}, id, now, body)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kinehook-bench-baseline")
	req.Header.Set(kinehook.HeaderID, id)
	req.Header.Set(kinehook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(kinehook.HeaderSignature, sig)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("post webhook: %s", resp.Status)
	}
	return nil
}
