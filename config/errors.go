package config

import (
	"errors"
	"strconv"
)

// ErrInvalid is wrapped by every error Parse, Load, Validate and Apply
// return for a document that cannot be applied: bad YAML, an unknown key, a
// wrong type, a value out of range, or a document that does not fit the
// consumer. Nothing of such a document is applied.
var ErrInvalid = errors.New("config: invalid document")

// FieldError is one reason a document was rejected. Several are joined
// with errors.Join; errors.As finds the first.
type FieldError struct {
	// Field is the key's path, e.g. "subscriptions.orders.poolSize"; empty
	// for the document as a whole.
	Field string
	// Line is the key's line in the YAML document, 1-based; 0 when the
	// document did not come from YAML or the line is unknown.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error formats the error as "config: field (line n): message".
func (e *FieldError) Error() string {
	s := "config: "
	if e.Field != "" {
		s += e.Field + " "
	}
	if e.Line > 0 {
		s += "(line " + strconv.Itoa(e.Line) + ") "
	}
	if e.Field != "" || e.Line > 0 {
		s = s[:len(s)-1] + ": "
	}
	return s + e.Msg
}

// Unwrap returns ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }
