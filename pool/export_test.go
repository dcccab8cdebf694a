package pool

import "time"

// SetSpreadAfter sets how long l's tasks wait unclaimed before its lanes
// spread (SpreadAfter by default); call it after Init.
func SetSpreadAfter(l *Lanes, d time.Duration) { l.spread = d }
