package cluster

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCoordinatorPeers: a peer message reaches the instance it names, and
// only that one, with the sender's id; an oversized one is refused.
func TestCoordinatorPeers(t *testing.T) {
	s := openStore(t)
	reg := &registry{by: map[int]string{}}
	a := startCoord(t, s, "inst-a", reg)
	b := startCoord(t, s, "inst-b", reg)
	c := startCoord(t, s, "inst-c", reg)
	waitFor(t, 10*time.Second, "three instances share the partitions", func() bool { return settled(reg, a.owner, b.owner, c.owner) })
	var mu sync.Mutex
	got := map[string][]string{}
	for _, x := range []*runningCoord{a, b, c} {
		name := x.c.ID()
		x.c.OnPeer(func(from, payload string) {
			mu.Lock()
			got[name] = append(got[name], from+" "+payload)
			mu.Unlock()
		})
	}
	if err := a.c.SendPeer(t.Context(), "inst-b", "hello b with spaces"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "b gets a's message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got["inst-b"]) == 1
	})
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	if got["inst-b"][0] != "inst-a hello b with spaces" || len(got["inst-a"])+len(got["inst-c"]) != 0 {
		t.Errorf("messages: %v", got)
	}
	mu.Unlock()
	if err := a.c.SendPeer(t.Context(), "inst-b", strings.Repeat("x", a.c.MaxPeerPayload()+1)); err == nil {
		t.Error("an oversized peer message was sent")
	}
}
