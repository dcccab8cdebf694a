package opshttp

import "errors"

var (
	// ErrInvalidOption is wrapped by the errors New returns for a bad
	// option; the message names it.
	ErrInvalidOption = errors.New("opshttp: invalid option")

	// ErrChangesDisabled is returned by Change when the handler has no
	// authorizer (WithAuthorizer); the page answers 403.
	ErrChangesDisabled = errors.New("opshttp: changes disabled")

	// ErrUnknownGroup is returned by Change for a group the handler does
	// not show.
	ErrUnknownGroup = errors.New("opshttp: unknown group")
)
