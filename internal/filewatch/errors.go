package filewatch

import "errors"

// ErrInvalidOption is wrapped by the error New returns for a bad option;
// the message names the option.
var ErrInvalidOption = errors.New("filewatch: invalid option")
