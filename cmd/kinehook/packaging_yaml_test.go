package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// parseMiniYAML parses the block-style YAML subset deploy/compose.yaml is
// written in, so the packaging tests can check its structure without a YAML
// dependency: nested mappings, sequences of scalars ("- x"), flow sequences
// of scalars (["a", "b"]), plain, "double" and 'single' quoted scalars, and
// # comments. Anything else (anchors, multi-line scalars, sequences of
// mappings, tabs) is an error, so the file cannot drift into YAML this test
// would misread.
func parseMiniYAML(src string) (map[string]any, error) {
	type line struct {
		n      int
		indent int
		text   string
	}
	var lines []line
	for i, raw := range strings.Split(src, "\n") {
		if strings.Contains(raw, "\t") {
			return nil, fmt.Errorf("line %d: tab character", i+1)
		}
		text := strings.TrimRight(stripYAMLComment(raw), " ")
		if strings.TrimSpace(text) == "" {
			continue
		}
		indent := len(text) - len(strings.TrimLeft(text, " "))
		lines = append(lines, line{n: i + 1, indent: indent, text: strings.TrimSpace(text)})
	}
	pos := 0
	var parseBlock func(indent int) (any, error)
	parseBlock = func(indent int) (any, error) {
		if pos >= len(lines) || lines[pos].indent != indent {
			return nil, errors.New("empty block")
		}
		if strings.HasPrefix(lines[pos].text, "- ") || lines[pos].text == "-" {
			var seq []any
			for pos < len(lines) && lines[pos].indent == indent {
				l := lines[pos]
				item, ok := strings.CutPrefix(l.text, "- ")
				if !ok {
					return nil, fmt.Errorf("line %d: expected a sequence item", l.n)
				}
				if _, _, isMap := cutYAMLKey(item); isMap {
					return nil, fmt.Errorf("line %d: sequences of mappings are outside the subset", l.n)
				}
				v, err := parseYAMLScalar(item)
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", l.n, err)
				}
				seq = append(seq, v)
				pos++
			}
			if pos < len(lines) && lines[pos].indent > indent {
				return nil, fmt.Errorf("line %d: unexpected indentation", lines[pos].n)
			}
			return seq, nil
		}
		m := map[string]any{}
		for pos < len(lines) && lines[pos].indent == indent {
			l := lines[pos]
			key, rest, ok := cutYAMLKey(l.text)
			if !ok {
				return nil, fmt.Errorf("line %d: expected key: value", l.n)
			}
			if _, dup := m[key]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", l.n, key)
			}
			pos++
			if rest != "" {
				v, err := parseYAMLScalar(rest)
				if err != nil {
					return nil, fmt.Errorf("line %d: %w", l.n, err)
				}
				m[key] = v
				continue
			}
			if pos < len(lines) && lines[pos].indent > indent {
				v, err := parseBlock(lines[pos].indent)
				if err != nil {
					return nil, err
				}
				m[key] = v
			} else if pos < len(lines) && lines[pos].indent == indent && strings.HasPrefix(lines[pos].text, "- ") {
				// A sequence may sit at its key's own indentation.
				v, err := parseBlock(indent)
				if err != nil {
					return nil, err
				}
				m[key] = v
			} else {
				m[key] = nil
			}
		}
		if pos < len(lines) && lines[pos].indent > indent {
			return nil, fmt.Errorf("line %d: unexpected indentation", lines[pos].n)
		}
		return m, nil
	}
	if len(lines) == 0 {
		return map[string]any{}, nil
	}
	if lines[0].indent != 0 {
		return nil, fmt.Errorf("line %d: the document must start at column 0", lines[0].n)
	}
	v, err := parseBlock(0)
	if err != nil {
		return nil, err
	}
	if pos != len(lines) {
		return nil, fmt.Errorf("line %d: unexpected indentation", lines[pos].n)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("the document is not a mapping")
	}
	return m, nil
}

// stripYAMLComment removes a # comment (at the start or after a space)
// outside quotes.
func stripYAMLComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || s[i-1] == ' '):
			return s[:i]
		}
	}
	return s
}

// cutYAMLKey splits "key: value" or "key:" with a plain key.
func cutYAMLKey(s string) (key, rest string, ok bool) {
	if s == "" || strings.ContainsAny(s[:1], `"'[{-&*!|>`) {
		return "", "", false
	}
	i := strings.Index(s, ": ")
	if i < 0 {
		if k, found := strings.CutSuffix(s, ":"); found && !strings.ContainsAny(k, " :") {
			return k, "", true
		}
		return "", "", false
	}
	key = s[:i]
	if strings.ContainsAny(key, " \"'") {
		return "", "", false
	}
	return key, strings.TrimSpace(s[i+2:]), true
}

// parseYAMLScalar reads a scalar or a flow sequence of scalars.
func parseYAMLScalar(s string) (any, error) {
	switch {
	case s == "":
		return nil, nil
	case strings.HasPrefix(s, "["):
		if !strings.HasSuffix(s, "]") {
			return nil, fmt.Errorf("unterminated flow sequence %q", s)
		}
		var seq []any
		inner := strings.TrimSpace(s[1 : len(s)-1])
		for inner != "" {
			item, rest, err := cutFlowItem(inner)
			if err != nil {
				return nil, err
			}
			v, err := parseYAMLScalar(item)
			if err != nil {
				return nil, err
			}
			if _, nested := v.([]any); nested {
				return nil, fmt.Errorf("nested flow sequence in %q", s)
			}
			seq = append(seq, v)
			inner = rest
		}
		return seq, nil
	case strings.HasPrefix(s, `"`):
		var out string
		if err := json.Unmarshal([]byte(s), &out); err != nil {
			return nil, fmt.Errorf("double-quoted scalar %s: %w", s, err)
		}
		return out, nil
	case strings.HasPrefix(s, "'"):
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return nil, fmt.Errorf("unterminated single-quoted scalar %s", s)
		}
		inner := s[1 : len(s)-1]
		if strings.Contains(strings.ReplaceAll(inner, "''", ""), "'") {
			return nil, fmt.Errorf("stray quote in %s", s)
		}
		return strings.ReplaceAll(inner, "''", "'"), nil
	case strings.ContainsAny(s[:1], "{&*!|>%@`"):
		return nil, fmt.Errorf("%q is outside the YAML subset", s)
	}
	return s, nil
}

// cutFlowItem takes the first item of a flow sequence's inside.
func cutFlowItem(s string) (item, rest string, err error) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ',':
			item = strings.TrimSpace(s[:i])
			if item == "" {
				return "", "", fmt.Errorf("empty item in flow sequence [%s]", s)
			}
			return item, strings.TrimSpace(s[i+1:]), nil
		}
	}
	if quote != 0 {
		return "", "", fmt.Errorf("unterminated quote in flow sequence [%s]", s)
	}
	return strings.TrimSpace(s), "", nil
}

func TestParseMiniYAML(t *testing.T) {
	doc := `# comment
name: kinehook
services:
  a:
    command: ["serve", "--addr", ":8080"] # trailing
    environment:
      K: 'it''s'
      URL: postgres://u:${P}@h:5432/db?x=y#frag
    ports:
      - "127.0.0.1:8081:8080"
    list:
    - one
    - two
  b:
volumes:
  data:
`
	got, err := parseMiniYAML(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"name": "kinehook",
		"services": map[string]any{
			"a": map[string]any{
				"command":     []any{"serve", "--addr", ":8080"},
				"environment": map[string]any{"K": "it's", "URL": "postgres://u:${P}@h:5432/db?x=y#frag"},
				"ports":       []any{"127.0.0.1:8081:8080"},
				"list":        []any{"one", "two"},
			},
			"b": nil,
		},
		"volumes": map[string]any{"data": nil},
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Fatalf("parsed\n%s\nwant\n%s", gj, wj)
	}
	for _, bad := range []string{
		"a: 1\na: 2\n",
		"a:\n\tb: 1\n",
		"a:\n  b: 1\n c: 2\n",
		"a: [\"x\"\n",
		"a: &anchor 1\n",
		"a: |\n  text\n",
		"a:\n  - b: 1\n",
		"  a: 1\n",
		"- a\n",
		"a: \"unterminated\n",
		"a: [x, , y]\n",
	} {
		if _, err := parseMiniYAML(bad); err == nil {
			t.Errorf("parseMiniYAML(%q) accepted", bad)
		}
	}
}

func FuzzParseMiniYAML(f *testing.F) {
	f.Add("a:\n  b: [\"x\", 'y']\n  c:\n    - d\n")
	f.Add("services:\n  x:\n    command: [\"a\", \"b,c\"] # c\n")
	f.Add("a: 'it''s' # x\n")
	f.Fuzz(func(t *testing.T, src string) {
		m, err := parseMiniYAML(src)
		if err != nil {
			return
		}
		again, err := parseMiniYAML(src)
		if err != nil {
			t.Fatalf("second parse failed: %v", err)
		}
		a, _ := json.Marshal(m)
		b, _ := json.Marshal(again)
		if string(a) != string(b) {
			t.Fatalf("parse is not deterministic: %s vs %s", a, b)
		}
	})
}
