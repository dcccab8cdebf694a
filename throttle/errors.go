package throttle

import "errors"

// ErrInvalidLimit is wrapped by the errors New, Set and Limit.Validate
// return for a negative, NaN, infinite or absurdly large rate or burst. The
// message names the field and the accepted range.
var ErrInvalidLimit = errors.New("throttle: invalid limit")
