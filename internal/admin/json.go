package admin

import (
	"encoding/json"
	"fmt"
)

// Brokers and name servers encode bodies with fastjson, whose output is not
// always standard JSON: a map with non-string keys is written with the keys
// as they are, so a HashMap<Long, String> comes out as {0:"127.0.0.1:10911"}
// and ConsumeStats' Map<MessageQueue, OffsetWrapper> as
// {{"brokerName":"b","queueId":0,"topic":"t"}:{"brokerOffset":5,...}}.
//
// standardJSON rewrites such a text into standard JSON:
//   - an object key that is not a string (a number, a bare word such as true
//     or an unquoted name, an object or an array) becomes a string holding the
//     key's own text, compact and itself made standard; so {0:"a"} becomes
//     {"0":"a"}, which decodes into a map[int64]string, and an object key
//     becomes "{\"brokerName\":\"b\",...}", which json.Unmarshal decodes into
//     a struct in a second step;
//   - NaN, Infinity and -Infinity values (a Java double) become null;
//   - a comma before a closing bracket or brace is dropped;
//   - whitespace outside strings is dropped.
//
// Strings are copied as they are; encoding/json checks them later.
func standardJSON(in []byte) ([]byte, error) {
	s := jsonScanner{in: in}
	s.skipSpace()
	out, err := s.value(make([]byte, 0, len(in)+len(in)/8), 0, false)
	if err != nil {
		return nil, err
	}
	s.skipSpace()
	if s.pos != len(s.in) {
		return nil, s.errorf("unexpected %q after the top-level value", s.in[s.pos])
	}
	return out, nil
}

// decodeJSON decodes the fastjson body into v (see standardJSON).
func decodeJSON(body []byte, v any) error {
	std, err := standardJSON(body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(std, v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	return nil
}

// maxJSONDepth bounds the nesting of arrays and objects.
const maxJSONDepth = 256

type jsonScanner struct {
	in  []byte
	pos int
}

func (s *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("malformed JSON body at offset %d: %s", s.pos, fmt.Sprintf(format, args...))
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.in) {
		switch s.in[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

// value appends the value at s.pos to out. In a key, bare words are allowed.
func (s *jsonScanner) value(out []byte, depth int, key bool) ([]byte, error) {
	if s.pos >= len(s.in) {
		return nil, s.errorf("unexpected end")
	}
	switch s.in[s.pos] {
	case '{':
		return s.object(out, depth+1)
	case '[':
		return s.array(out, depth+1)
	case '"':
		return s.str(out)
	}
	return s.scalar(out, key)
}

func (s *jsonScanner) object(out []byte, depth int) ([]byte, error) {
	if depth > maxJSONDepth {
		return nil, s.errorf("nested deeper than %d", maxJSONDepth)
	}
	s.pos++ // {
	out = append(out, '{')
	s.skipSpace()
	if s.pos < len(s.in) && s.in[s.pos] == '}' {
		s.pos++
		return append(out, '}'), nil
	}
	for {
		s.skipSpace()
		var err error
		if s.pos < len(s.in) && s.in[s.pos] == '"' {
			out, err = s.str(out)
		} else {
			var key []byte
			key, err = s.value(nil, depth, true)
			out = appendJSONString(out, key)
		}
		if err != nil {
			return nil, err
		}
		s.skipSpace()
		if s.pos >= len(s.in) || s.in[s.pos] != ':' {
			return nil, s.errorf("want ':' after an object key")
		}
		s.pos++
		out = append(out, ':')
		s.skipSpace()
		if out, err = s.value(out, depth, false); err != nil {
			return nil, err
		}
		s.skipSpace()
		if s.pos >= len(s.in) {
			return nil, s.errorf("unexpected end in an object")
		}
		switch s.in[s.pos] {
		case '}':
			s.pos++
			return append(out, '}'), nil
		case ',':
			s.pos++
			s.skipSpace()
			if s.pos < len(s.in) && s.in[s.pos] == '}' { // trailing comma
				s.pos++
				return append(out, '}'), nil
			}
			out = append(out, ',')
		default:
			return nil, s.errorf("want ',' or '}' in an object, got %q", s.in[s.pos])
		}
	}
}

func (s *jsonScanner) array(out []byte, depth int) ([]byte, error) {
	if depth > maxJSONDepth {
		return nil, s.errorf("nested deeper than %d", maxJSONDepth)
	}
	s.pos++ // [
	out = append(out, '[')
	s.skipSpace()
	if s.pos < len(s.in) && s.in[s.pos] == ']' {
		s.pos++
		return append(out, ']'), nil
	}
	for {
		s.skipSpace()
		var err error
		if out, err = s.value(out, depth, false); err != nil {
			return nil, err
		}
		s.skipSpace()
		if s.pos >= len(s.in) {
			return nil, s.errorf("unexpected end in an array")
		}
		switch s.in[s.pos] {
		case ']':
			s.pos++
			return append(out, ']'), nil
		case ',':
			s.pos++
			s.skipSpace()
			if s.pos < len(s.in) && s.in[s.pos] == ']' { // trailing comma
				s.pos++
				return append(out, ']'), nil
			}
			out = append(out, ',')
		default:
			return nil, s.errorf("want ',' or ']' in an array, got %q", s.in[s.pos])
		}
	}
}

// str appends the string at s.pos, quotes included, as it is.
func (s *jsonScanner) str(out []byte) ([]byte, error) {
	start := s.pos
	for i := s.pos + 1; i < len(s.in); i++ {
		switch s.in[i] {
		case '\\':
			i++ // skip the escaped character
		case '"':
			s.pos = i + 1
			return append(out, s.in[start:s.pos]...), nil
		}
	}
	return nil, s.errorf("unterminated string")
}

// scalar appends the number or literal at s.pos. A bare word other than
// true, false and null is an error outside keys; NaN and the infinities
// become null.
func (s *jsonScanner) scalar(out []byte, key bool) ([]byte, error) {
	start := s.pos
	for s.pos < len(s.in) && !isDelimiter(s.in[s.pos]) {
		s.pos++
	}
	tok := s.in[start:s.pos]
	if len(tok) == 0 {
		return nil, s.errorf("unexpected %q", s.in[s.pos])
	}
	if key {
		return append(out, tok...), nil
	}
	switch string(tok) {
	case "true", "false", "null":
		return append(out, tok...), nil
	case "NaN", "Infinity", "-Infinity":
		return append(out, "null"...), nil
	}
	if (tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9') && json.Valid(tok) {
		return append(out, tok...), nil
	}
	s.pos = start
	return nil, s.errorf("unexpected bare word %q", tok)
}

func isDelimiter(b byte) bool {
	switch b {
	case ' ', '\t', '\r', '\n', ',', ':', '{', '}', '[', ']', '"':
		return true
	}
	return false
}

// appendJSONString appends text as a JSON string.
func appendJSONString(out, text []byte) []byte {
	const hex = "0123456789abcdef"
	out = append(out, '"')
	for _, b := range text {
		switch {
		case b == '"' || b == '\\':
			out = append(out, '\\', b)
		case b < 0x20:
			out = append(out, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
		default:
			out = append(out, b)
		}
	}
	return append(out, '"')
}
