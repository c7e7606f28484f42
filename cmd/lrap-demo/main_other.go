//go:build !linux

// Command lrap-demo needs Linux: the emulator sandbox uses mount and PID
// namespaces.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "lrap-demo: needs Linux (the emulator sandbox uses mount and PID namespaces)")
	os.Exit(1)
}
