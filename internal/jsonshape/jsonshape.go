// Package jsonshape measures the structure of JSON text without decoding it:
// how deeply it nests and how many members its outermost object has. The
// API refuses deep nesting before a decoder recurses into it, and strict
// event parsing compares the member count with the decoded map to find a key
// given twice, which encoding/json would silently collapse.
package jsonshape

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
