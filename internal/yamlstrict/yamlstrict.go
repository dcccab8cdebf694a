// Package yamlstrict decodes small YAML documents that people edit by
// hand and that are reloaded while a process runs: exactly one document,
// of bounded size, with errors that carry the line where the YAML says
// so, and a parser panic turned into an error, since a reload must never
// crash the process.
//
// It is shared by the config and migrate packages, which check the
// returned tree against their own schema and turn an *Error into their
// own FieldError.
package yamlstrict

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a reason a document could not be decoded. Msg has no "yaml: "
// prefix; the YAML library's messages keep the line in their text.
type Error struct {
	// Line is the 1-based line of the problem; 0 when unknown or when Msg
	// holds it.
	Line int
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Root parses data, at most maxSize bytes, as exactly one YAML document
// and returns its root node, not resolved if it is an alias. Every error
// is an *Error: too large, a syntax error, no document or an empty one
// ("empty document"), or more than one.
func Root(data []byte, maxSize int) (root *yaml.Node, err error) {
	if len(data) > maxSize {
		return nil, &Error{Msg: fmt.Sprintf("document is %d bytes, more than %d", len(data), maxSize)}
	}
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, &Error{Msg: fmt.Sprintf("YAML parser failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Msg: "empty document"}
		}
		return nil, &Error{Msg: trim(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{Msg: "more than one YAML document (only one is allowed)"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{Msg: "empty document"}
	}
	return doc.Content[0], nil
}

// Decode decodes data into v, refusing keys that v has no field for. An
// error is an *Error.
func Decode(data []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &Error{Msg: fmt.Sprintf("YAML decoder failed: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return &Error{Msg: trim(err)}
	}
	return nil
}

func trim(err error) string { return strings.TrimPrefix(err.Error(), "yaml: ") }
