package dashboard

import (
	"html"
	"net/url"
	"strings"
	"testing"
)

func TestBreakURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:9000/hook2", "http://127.0.0.1:9000/<wbr>hook2"},
		{"https://example.com/webhooks/kinescope/", "https://example.com/<wbr>webhooks/<wbr>kinescope/"},
		{"https://example.com:8443/a/b?x=1&y=2", "https://example.com:8443/<wbr>a/<wbr>b?<wbr>x=1&amp;<wbr>y=2"},
		{"https://example.com?x=1", "https://example.com?<wbr>x=1"},
		{"https://example.com", "https://example.com"},
		{"nats://nats.internal:4222 → kinehook.events", "nats://nats.internal:4222 → kinehook.events"},
		{"kafka://h1:9092,h2:9092 → t", "kafka://h1:9092,<wbr>h2:9092 → t"},
		{"redis://r:6379/0 → s", "redis://r:6379/<wbr>0 → s"},
		{"kinehook listen (connected)", "kinehook listen (connected)"},
		{`https://e.com/<script>"'`, "https://e.com/<wbr>&lt;script&gt;&#34;&#39;"},
		{"a/b", "a/<wbr>b"},
		{"", ""},
	}
	for _, tc := range tests {
		if got := string(breakURL(tc.in)); got != tc.want {
			t.Errorf("breakURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzBreakURL(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:9000/hook2", "https://u:p@example.com:8443/a/b?x=1&y=2#f", "kafka://a:1,b:2 → t", "a//b", "<>&\"'", "://", "/", "a\x00/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := string(breakURL(s))
		text := strings.ReplaceAll(out, "<wbr>", "")
		if strings.ContainsAny(text, "<>\"'") {
			t.Fatalf("breakURL(%q) = %q: markup besides <wbr>", s, out)
		}
		if html.UnescapeString(text) != strings.ReplaceAll(s, "\x00", "\uFFFD") { // as html/template writes a NUL
			t.Fatalf("breakURL(%q) = %q, which reads %q", s, out, html.UnescapeString(text))
		}
		// scheme://host:port, as net/url reads it, is never broken.
		if u, err := url.Parse(s); err == nil && u.Host != "" && !strings.Contains(u.Host, ",") {
			if head := u.Scheme + "://" + u.Host; strings.HasPrefix(s, head) && !strings.HasPrefix(out, html.EscapeString(head)) {
				t.Fatalf("breakURL(%q) = %q: a break inside %q", s, out, head)
			}
		}
	})
}
