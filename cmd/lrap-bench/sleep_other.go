//go:build !linux

package main

import "time"

// shortSleep sleeps about d (millisecond precision outside Linux).
func shortSleep(d time.Duration) { time.Sleep(d) }
