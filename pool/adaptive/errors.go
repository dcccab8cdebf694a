package adaptive

import "errors"

// ErrInvalidConfig is returned by Config.Validate (and wrapped by the
// consumer's WithAdaptivePool check) when the bounds cannot work.
var ErrInvalidConfig = errors.New("adaptive: invalid config")
