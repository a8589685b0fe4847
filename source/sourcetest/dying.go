package sourcetest

import (
	"context"
	"sync"

	"github.com/kinehook/kinehook/source"
)

// Dying is a Consumer that dies the way a killed kinehook does, for the
// broker packages' restart tests: it loses every acknowledgement (killed
// between its commit and its ack) and, after StopAfter batches with
// messages, holds the next batch it fetched without handing it on (killed
// before committing it) until its context ends. Dead is closed then.
type Dying struct {
	source.Consumer
	StopAfter int
	Dead      chan struct{}

	mu      sync.Mutex
	batches int
}

// NewDying wraps c, dying after stopAfter batches.
func NewDying(c source.Consumer, stopAfter int) *Dying {
	return &Dying{Consumer: c, StopAfter: stopAfter, Dead: make(chan struct{})}
}

// Fetch fetches from the wrapped consumer until the batch after
// StopAfter, which it holds.
func (d *Dying) Fetch(ctx context.Context, max int) ([]source.Message, error) {
	msgs, err := d.Consumer.Fetch(ctx, max)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(msgs) > 0 {
		d.batches++
	}
	if d.batches > d.StopAfter {
		select {
		case <-d.Dead:
		default:
			close(d.Dead)
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return msgs, err
}

// Ack loses the acknowledgement.
func (d *Dying) Ack(context.Context, []source.Message) error { return nil }
