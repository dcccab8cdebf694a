package rmqtest

import (
	"syscall"
	"time"
)

// ProcessCPU returns the user plus system CPU time this process has used
// (getrusage RUSAGE_SELF: every thread, the garbage collector's too).
// Benchmarks take it before and after a run to report CPU per message; runs
// must then be sequential, since concurrent work in the process counts.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
