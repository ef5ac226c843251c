package schema

import (
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads a body in the narrow form the fast path can vouch for.
// Every method answers ok=false for anything outside that form; false
// means "not sure", never "invalid".
type scanner struct {
	b []byte
	i int
}

// check reads one value of some shape and says whether it certainly
// meets the schema's rule for it.
type check func(s *scanner) bool

// member is a property of an object shape: its exact (case-sensitive)
// name, whether the schema requires it, and the check of its value.
type member struct {
	name     string
	required bool
	value    check
}

// shape is an object with additionalProperties false: only its members,
// each at most once. rule, when set, checks what the members cannot
// alone (an if/then), on the values as written.
type shape struct {
	members []member
	rule    func(written) bool
}

// written is the values of an object's members as the body writes them.
type written struct {
	sh  *shape
	raw [][]byte // raw[i] is member i's value, nil when the body leaves it out
}

func (w written) get(name string) []byte {
	if i := w.sh.find([]byte(name)); i >= 0 {
		return w.raw[i]
	}
	return nil
}

func (s *scanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next consumes c, after white space, if it is the next byte.
func (s *scanner) next(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether nothing but white space is left.
func (s *scanner) end() bool {
	s.space()
	return s.i == len(s.b)
}

// plain reads a string of printable ASCII without escapes and returns
// what is between its quotes: what it says is exactly what it is written
// as. Every key, id, name, enum value and timestamp the fast path accepts
// is one.
func (s *scanner) plain() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	for start := s.i; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, false
		}
	}
	return nil, false
}

// text reads any string that is valid UTF-8 and has no escaped UTF-16
// surrogate, and returns its length in code points, as JSON Schema counts
// it.
func (s *scanner) text() (int, bool) {
	if !s.next('"') {
		return 0, false
	}
	n := 0
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return n, true
		case c < 0x20:
			return 0, false
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return 0, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				r, ok := hex4(s.b[s.i+2:])
				if !ok || utf16.IsSurrogate(r) {
					return 0, false
				}
				s.i += 6
			default:
				return 0, false
			}
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return 0, false
			}
			s.i += size
		}
		n++
	}
	return 0, false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// maxDigits bounds the integers the fast path reads: 16 digits hold the
// contract's largest maximum (2^53-1) and stay within an int64.
const maxDigits = 16

// natural reads a non-negative integer written as plain digits: no sign,
// fraction, exponent or leading zero.
func (s *scanner) natural() (uint64, bool) {
	s.space()
	start := s.i
	var v uint64
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		v = v*10 + uint64(s.b[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || n > maxDigits || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	return v, true
}

// object reads an object of shape sh: exact member names, none twice,
// every required one present.
func (s *scanner) object(sh *shape) bool {
	if len(sh.members) > 64 || !s.next('{') {
		return false
	}
	var raw [][]byte
	if sh.rule != nil {
		raw = make([][]byte, len(sh.members))
	}
	var seen uint64
	if !s.next('}') {
		for {
			key, ok := s.plain()
			if !ok || !s.next(':') {
				return false
			}
			i := sh.find(key)
			if i < 0 || seen&(1<<i) != 0 {
				return false
			}
			seen |= 1 << i
			s.space()
			start := s.i
			if !sh.members[i].value(s) {
				return false
			}
			if raw != nil {
				raw[i] = s.b[start:s.i]
			}
			if s.next('}') {
				break
			}
			if !s.next(',') {
				return false
			}
		}
	}
	for i, m := range sh.members {
		if m.required && seen&(1<<i) == 0 {
			return false
		}
	}
	return sh.rule == nil || sh.rule(written{sh, raw})
}

func (sh *shape) find(key []byte) int {
	for i, m := range sh.members {
		if m.name == string(key) {
			return i
		}
	}
	return -1
}

// array reads an array of min to max items, each passing item.
func (s *scanner) array(min, max int, item check) bool {
	if !s.next('[') {
		return false
	}
	n := 0
	if !s.next(']') {
		for {
			if n++; n > max || !item(s) {
				return false
			}
			if s.next(']') {
				break
			}
			if !s.next(',') {
				return false
			}
		}
	}
	return n >= min
}
