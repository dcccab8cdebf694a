package opshttp

import "errors"

var (
	// ErrInvalidOption is wrapped by the errors New returns for a bad
	// option; the message names it.
	ErrInvalidOption = errors.New("opshttp: invalid option")

	// ErrUnknownGroup is returned by Handler.Apply for a group the handler
	// does not show; the page answers 404.
	ErrUnknownGroup = errors.New("opshttp: unknown group")
)
