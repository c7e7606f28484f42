package main

import (
	"syscall"
	"time"
)

// shortSleep sleeps about d with microsecond precision. time.Sleep cannot:
// an idle Go runtime waits in epoll with millisecond granularity. The
// nanosleep syscall blocks only this thread.
func shortSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}
