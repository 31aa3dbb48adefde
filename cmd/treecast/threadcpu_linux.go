package main

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU returns the CPU time (user + system) the calling OS thread has used, and whether
// the system tells it (Linux: getrusage RUSAGE_THREAD). The caller locks its goroutine to the
// thread (runtime.LockOSThread) for the figure to be its own.
func threadCPU() (time.Duration, bool) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
