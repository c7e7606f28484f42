package sandbox

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The emulator is pinned so that every run of the suite talks to the same
// Runtime API implementation: the notes this project works from cite this
// snapshot (it honours X-Amzn-RequestId in classic mode and computes LMI
// deadlines correctly, which the comparisons rely on).
const (
	RIEModule  = "github.com/aws/aws-lambda-runtime-interface-emulator"
	RIEVersion = "v0.0.0-20261030222936-bef5c4ba774d"
	riePackage = RIEModule + "/cmd/aws-lambda-rie"
	// RIEBinary is the file name go install gives the emulator.
	RIEBinary = "aws-lambda-rie"
)

// installTimeout bounds go install; a cold module cache needs about 30 s.
const installTimeout = 5 * time.Minute

// RIEVersionOf reports the module version an emulator binary was built from,
// read from the build information Go embeds in every binary.
func RIEVersionOf(path string) (string, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", err
	}
	if info.Main.Path != RIEModule {
		return "", fmt.Errorf("%s is built from %q, not %s", path, info.Main.Path, RIEModule)
	}
	return info.Main.Version, nil
}

// FindRIE returns the first aws-lambda-rie in dirs that was built from the
// pinned version. A binary of another version is skipped rather than used, so
// a stale cache cannot silently change what the tests run against.
func FindRIE(dirs ...string) (string, bool) {
	for _, d := range dirs {
		if d == "" {
			continue
		}
		p, err := filepath.Abs(filepath.Join(d, RIEBinary))
		if err != nil {
			continue
		}
		if v, err := RIEVersionOf(p); err == nil && v == RIEVersion {
			return p, true
		}
	}
	return "", false
}

// EnsureRIE returns the path of the pinned emulator in dir, installing it
// there with go install when it is missing or of another version.
func EnsureRIE(ctx context.Context, dir string) (string, error) {
	if p, ok := FindRIE(dir); ok {
		return p, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("sandbox: emulator cache dir: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("sandbox: installing the emulator needs the go command: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "install", riePackage+"@"+RIEVersion)
	// Outside any module so the caller's go.mod cannot influence the build;
	// GOFLAGS from the caller could (e.g. -mod=vendor) and is cleared.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOBIN="+abs, "GOFLAGS=", "CGO_ENABLED=0")
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %s", installTimeout)
		}
		return "", fmt.Errorf("sandbox: go install %s@%s: %w\n%s", riePackage, RIEVersion, err, out.String())
	}
	p, ok := FindRIE(abs)
	if !ok {
		return "", fmt.Errorf("sandbox: go install succeeded but %s is not the pinned version", filepath.Join(abs, RIEBinary))
	}
	return p, nil
}
