//go:build !linux

package integration

import "os/exec"

// dieWithTest is a no-op where the kernel has no parent-death signal; the
// cleanups still kill every process by its PID.
func dieWithTest(*exec.Cmd) {}
