package adaptive_test

import (
	"fmt"
	"time"

	"github.com/rmqkit/rmqkit/pool/adaptive"
)

// The controller's first windows against a downstream that serves 8 calls
// at once in 5 ms and queues beyond: slow start from the minimum, then back
// to the knee plus headroom once queueing shows.
func Example() {
	cfg := adaptive.Config{Min: 2, Max: 64}
	s := adaptive.Start(cfg)
	for range 6 {
		median := 5 * time.Millisecond * time.Duration(max(s.Limit, 8)) / 8
		s = adaptive.Next(cfg, s, adaptive.Window{Samples: 500, Median: median, Utilization: 1})
		fmt.Println(s.Limit, s.Reason)
	}
	// Output:
	// 3 slow-start
	// 5 slow-start
	// 8 slow-start
	// 12 slow-start
	// 10 queueing
	// 10 hold
}
