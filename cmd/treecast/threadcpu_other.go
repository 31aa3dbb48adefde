//go:build !linux

package main

import "time"

// threadCPU reports that this system does not tell a thread's CPU time.
func threadCPU() (time.Duration, bool) { return 0, false }
