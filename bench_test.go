package kinehook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func BenchmarkVerifyV1(b *testing.B) {
	body := SampleEvent(EventMediaUpdateStatus)
	now := time.Now()
	h := http.Header{}
	if err := SignRequest(h, []string{refSecret}, "msg_bench", now, body); err != nil {
		b.Fatal(err)
	}
	v, _ := NewVerifier([]string{refSecret})
	for b.Loop() {
		if err := v.Verify(h, body, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyV1a(b *testing.B) {
	priv, pub, _ := GenerateKeyPair()
	body := SampleEvent(EventMediaUpdateStatus)
	now := time.Now()
	h := http.Header{}
	if err := SignRequest(h, []string{priv}, "msg_bench", now, body); err != nil {
		b.Fatal(err)
	}
	v, _ := NewVerifier([]string{pub})
	for b.Loop() {
		if err := v.Verify(h, body, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLenient(b *testing.B) {
	body := SampleEvent(EventMediaUpdateStatus)
	for b.Loop() {
		if _, err := ParseLenient(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandler is one signed, new delivery through the whole Handler
// (verify, parse, dedup claim and commit, callback, answer).
func BenchmarkHandler(b *testing.B) {
	h, err := NewHandler(HandlerOptions{
		Secrets:       []string{refSecret},
		Logger:        quietLog,
		OnMediaStatus: func(context.Context, *Incoming, MediaData) error { return nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	body := string(SampleEvent(EventMediaUpdateStatus))
	now := time.Now()
	i := 0
	for b.Loop() {
		i++
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		if err := SignRequest(r.Header, []string{refSecret}, "msg_"+strconv.Itoa(i), now, []byte(body)); err != nil {
			b.Fatal(err)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
