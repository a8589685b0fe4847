package delivery

import "time"

// A gatherer fills the batches of one committing goroutine (the group
// commit of new events, the writer of attempt results): it takes what is
// already waiting on its channel and, under load, lingers a moment for
// more. Every commit rewrites the tail pages of the tables and indexes it
// touches, whatever the number of rows, so on SQLite a batch twice as large
// writes almost half the WAL bytes per row; the linger is what makes batches
// grow with load. With a fixed window (Config.IngestWindow, ResultWindow)
// it always waits that long for a batch to fill. Without one the linger
// follows the previous batch: none after a batch of one (a lone request at
// low load is committed at once), ShortLinger after a small batch (a burst
// at low load adds little to its latency), and the gatherer's whole linger
// after a busy one (callers then arrive fast enough to fill it).
type gatherer[T any] struct {
	ch     <-chan T
	size   func(T) int   // the items a request adds to the batch
	max    int           // the batch size that ends gathering at once
	window time.Duration // fixed window; 0: adaptive linger
	linger time.Duration // the longest adaptive linger
	prev   int           // the previous batch's size
	timer  *time.Timer
}

// lingerFull is the previous batch's size from which a busy gatherer waits
// its whole linger (Config.IngestLinger, ResultLinger); after a smaller one
// it waits ShortLinger. On SQLite an event's ingest and result commits wrote
// 5.0 WAL frames (two pwrite calls each) per delivery in batches of 9, and
// 2.2 in batches of 32; at 32 clients a 250 µs linger left batches of 9.
const lingerFull = 4

func newGatherer[T any](ch <-chan T, size func(T) int, max int, window, linger time.Duration) *gatherer[T] {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &gatherer[T]{ch: ch, size: size, max: max, window: window, linger: linger, timer: t}
}

// wait is how long fill lingers for more once it has taken what is waiting.
func (g *gatherer[T]) wait() time.Duration {
	switch {
	case g.window > 0:
		return g.window
	case g.prev <= 1:
		return 0
	case g.prev < lingerFull:
		return min(ShortLinger, g.linger)
	}
	return g.linger
}

// fill appends to batch (which holds n items) what is waiting, and what
// arrives within the window, until it holds max items (a request is never
// split: the last one may take the batch past max). It returns the batch and
// false once the channel is closed and drained.
func (g *gatherer[T]) fill(batch []T, n int) ([]T, bool) {
	wait := g.wait()
	open := true
	batch, n, open = g.drain(batch, n)
	if open && n < g.max && wait > 0 {
		batch, n, open = g.await(batch, n, wait)
	}
	g.prev = n
	return batch, open
}

// drain takes what is already waiting, without blocking.
func (g *gatherer[T]) drain(batch []T, n int) ([]T, int, bool) {
	for n < g.max {
		select {
		case r, ok := <-g.ch:
			if !ok {
				return batch, n, false
			}
			batch = append(batch, r)
			n += g.size(r)
		default:
			return batch, n, true
		}
	}
	return batch, n, true
}

// await takes what arrives within wait.
func (g *gatherer[T]) await(batch []T, n int, wait time.Duration) ([]T, int, bool) {
	g.timer.Reset(wait)
	defer g.timer.Stop()
	for n < g.max {
		select {
		case r, ok := <-g.ch:
			if !ok {
				return batch, n, false
			}
			batch = append(batch, r)
			n += g.size(r)
		case <-g.timer.C:
			return batch, n, true
		}
	}
	return batch, n, true
}
