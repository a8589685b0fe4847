// Package jsonshape looks at JSON text for what encoding/json does not
// report: how deeply it nests (the API refuses deep nesting before a decoder
// recurses into it), how many members its outermost object has (strict event
// parsing compares that with the decoded map), a member name given twice and
// an unpaired \u surrogate escape (both silently collapsed or replaced by
// encoding/json, while other parsers read the text differently).
package jsonshape

import (
	"bytes"
	"encoding/json"
	"iter"
)

// Of returns the deepest nesting of arrays and objects in b and the number
// of members of the value that opens at depth 1 (the commas at that depth,
// plus one unless it is empty). Brackets and commas inside strings do not
// count. b is expected to be valid JSON; for other input the figures are
// whatever the bytes add up to.
func Of(b []byte) (maxDepth, members int) {
	depth, commas, inString, escaped, empty := 0, 0, false, false, true
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 {
				empty = false
			}
		case '{', '[':
			if depth == 1 {
				empty = false // an array or object as a member
			}
			depth++
			maxDepth = max(maxDepth, depth)
		case '}', ']':
			depth--
		case ',':
			if depth == 1 {
				commas++
			}
		default:
			if depth == 1 && c > ' ' {
				empty = false // a number, true, false or null at depth 1
			}
		}
	}
	if empty {
		return maxDepth, 0
	}
	return maxDepth, commas + 1
}

// LoneSurrogateAt is the offset of the first \u escape in a string of the
// JSON text b that encodes half of a UTF-16 surrogate pair without the other
// half, or -1. encoding/json reads such an escape as U+FFFD, so it hides
// what the text says.
func LoneSurrogateAt(b []byte) int {
	high := -1 // a high half waiting for its low half, right after it
	for i, r := range uEscapes(b) {
		if high >= 0 {
			if i == high+6 && r >= 0xDC00 && r <= 0xDFFF {
				high = -1
				continue
			}
			return high
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			high = i
		case r >= 0xDC00 && r <= 0xDFFF:
			return i
		}
	}
	return high
}

// NULAt returns the offset of the first \u0000 escape inside a string of the
// JSON text b, or -1. JSON text cannot hold a raw NUL byte in a string, so
// the escape is the only way U+0000 gets in; PostgreSQL's text type cannot
// store it, so the API refuses it where it would be stored as text.
func NULAt(b []byte) int {
	for i, r := range uEscapes(b) {
		if r == 0 {
			return i
		}
	}
	return -1
}

// uEscapes yields the offset and value of each \uXXXX escape inside the
// strings of the JSON text b (an escape without four hex digits is skipped).
func uEscapes(b []byte) iter.Seq2[int, rune] {
	return func(yield func(int, rune) bool) {
		inString := false
		for i := 0; i < len(b); i++ {
			c := b[i]
			if !inString {
				inString = c == '"'
				continue
			}
			switch c {
			case '"':
				inString = false
			case '\\':
				if i+1 < len(b) && b[i+1] == 'u' {
					if r, ok := hex4(b, i+2); ok && !yield(i, r) {
						return
					}
					i += 5
					continue
				}
				i++ // the escaped character
			}
		}
	}
}

// hex4 decodes the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

// DuplicateKey reports the first object member name that comes twice in the
// same object of the valid JSON text b, at any depth (names compared
// decoded, so "\u0061" repeats "a"). encoding/json keeps the last copy and
// other parsers the first, so a strict API refuses such text.
func DuplicateKey(b []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		keys     map[string]bool
		isObject bool
		wantKey  bool // the next string token is a member name
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				stack = append(stack, &frame{isObject: d == '{', wantKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].isObject {
					stack[len(stack)-1].wantKey = true // the value ended
				}
			}
			continue
		}
		if top == nil || !top.isObject {
			continue
		}
		if top.wantKey {
			k, _ := tok.(string)
			if top.keys[k] {
				return k, true
			}
			if top.keys == nil {
				top.keys = map[string]bool{}
			}
			top.keys[k] = true
			top.wantKey = false
			continue
		}
		top.wantKey = true // a scalar value ended
	}
}
