package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/lrap/lrap"
)

// roleEnv makes lrap-bench run as something else than the benchmark: the
// profiling variant of lrap.
const (
	roleEnv       = "LRAP_BENCH_ROLE"
	roleProfile   = "lrap-profile"
	profilePrefix = "LRAP_BENCH_PROFILE_PREFIX"
)

// runRole runs a re-executed lrap-bench in its role and returns the exit
// code.
func runRole(role string) int {
	switch role {
	case roleProfile:
		return runProfiledLrap(os.Getenv(profilePrefix))
	}
	fmt.Fprintf(os.Stderr, "lrap-bench: unknown %s=%q\n", roleEnv, role)
	return 2
}

// runProfiledLrap is lrap's own Run, as cmd/lrap runs it, with a CPU profile
// over its whole life and an allocation profile written at exit:
// <prefix>cpu.pprof and <prefix>allocs.pprof.
func runProfiledLrap(prefix string) int {
	cpu, err := os.Create(prefix + "cpu.pprof")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	runErr := lrap.Run(ctx, lrap.Options{Name: "lrap"})
	pprof.StopCPUProfile()
	cpu.Close()
	if f, err := os.Create(prefix + "allocs.pprof"); err == nil {
		_ = pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
	if runErr != nil {
		return 1
	}
	return 0
}
