// Package e2e runs lrap the way Lambda runs it: as an external extension
// under the AWS Lambda Runtime Interface Emulator, in front of a real
// aws-lambda-go function and a shell custom runtime. Every invoke is made once
// without lrap and once through it, and the caller-visible results must be
// identical byte for byte, in the classic and the Managed Instances data
// planes. lrap's debug log is checked as well, so a case cannot pass by
// bypassing the proxy.
//
// Run: go test -count=1 -v ./test/e2e/   (needs root or user namespaces; the
// first run installs the pinned emulator into .cache/bin with go install).
//
// The tests are Linux-only: the sandbox needs mount and PID namespaces.
package e2e
