package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/kinehook/kinehook"
)

func TestFairShare(t *testing.T) {
	n := kinehook.NumPartitions
	tests := []struct {
		name string
		self string
		live []string
		want int
	}{
		{"alone", "a", nil, n},
		{"alone, listed", "a", []string{"a"}, n},
		{"first of two", "a", []string{"a", "b"}, n/2 + n%2},
		{"second of two", "b", []string{"a", "b"}, n / 2},
		{"not yet listed", "c", []string{"a", "b"}, n / 3},
		{"first of three", "a", []string{"a", "b", "c"}, n/3 + min(1, n%3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := fairShare(tt.self, tt.live); got != tt.want {
				t.Errorf("fairShare(%q, %v) = %d, want %d", tt.self, tt.live, got, tt.want)
			}
		})
	}
}

func TestDeliveryPayloads(t *testing.T) {
	c := &Coordinator{id: "inst-a"}
	many := make([]string, 1000)
	parts := make([]int, len(many))
	for i := range many {
		many[i] = kinehook.NewID(kinehook.PrefixDelivery)
		parts[i] = i % kinehook.NumPartitions
	}
	tests := []struct {
		name     string
		ids      []string
		parts    []int
		payloads int
	}{
		{"one", many[:1], nil, 1},
		{"one with partition", many[:1], parts[:1], 1},
		{"many", many, nil, 4},
		{"many with partitions", many, parts, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.deliveryPayloads(tt.ids, tt.parts)
			if len(got) != tt.payloads {
				t.Errorf("%d payloads, want %d", len(got), tt.payloads)
			}
			var entries []string
			for _, p := range got {
				if len(p) > maxNotifyPayload {
					t.Errorf("payload of %d bytes, over %d", len(p), maxNotifyPayload)
				}
				from, rest, _ := strings.Cut(p, " ")
				if from != c.id {
					t.Errorf("payload from %q, want %q", from, c.id)
				}
				entries = append(entries, strings.Split(rest, ",")...)
			}
			if len(entries) != len(tt.ids) {
				t.Fatalf("%d entries, want %d", len(entries), len(tt.ids))
			}
			for i, e := range entries {
				id, _, _ := strings.Cut(e, ":")
				if id != tt.ids[i] {
					t.Fatalf("entry %d is %q, want %q", i, id, tt.ids[i])
				}
			}
		})
	}
}

// TestAfterCommitIdle: a coordinator that does not run neither waits nor
// defers anything (the store did not share the ingest).
func TestAfterCommitIdle(t *testing.T) {
	c, err := New(nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := []kinehook.IngestResult{{Event: &kinehook.Event{}, Deliveries: []*kinehook.Delivery{{ID: "d_1"}}}}
	start := time.Now()
	c.AfterCommit(t.Context(), res)
	if res[0].Deferred || time.Since(start) > time.Second {
		t.Errorf("idle AfterCommit: Deferred %v after %v", res[0].Deferred, time.Since(start))
	}
}
