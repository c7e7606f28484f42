package main

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// releaseFlags are the flags of lrap's release build.
var releaseFlags = []string{"build", "-trimpath", "-ldflags=-s -w"}

// binarySize is one stripped build.
type binarySize struct {
	Name  string `json:"name"` // lrap or reference
	OS    string `json:"os"`
	Arch  string `json:"arch"`
	Bytes int64  `json:"bytes"`
}

// build compiles pkg (relative to root) for linux/arch the way lrap is
// released (CGO_ENABLED=0, -trimpath, -ldflags "-s -w") into out.
func build(goCmd, root, pkg, arch, out string) error {
	cmd := exec.Command(goCmd, append(releaseFlags, "-o", out, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s (GOARCH=%s): %v\n%s", goCmd, strings.Join(cmd.Args[1:], " "), arch, err, b)
	}
	return nil
}

// builds are the binaries a run uses and reports.
type builds struct {
	lrap, reference string // for this machine's architecture
	sizes           []binarySize
	goVersion       string
}

// buildAll builds lrap and the reference for hostArch, and lrap for every
// arch in sizeArchs for the size report.
func buildAll(goCmd, root, dir, hostArch string, sizeArchs []string) (*builds, error) {
	b := &builds{}
	for _, arch := range sizeArchs {
		out := filepath.Join(dir, "lrap-linux-"+arch)
		if err := build(goCmd, root, "./cmd/lrap", arch, out); err != nil {
			return nil, err
		}
		if arch == hostArch {
			b.lrap = out
		}
	}
	if b.lrap == "" {
		b.lrap = filepath.Join(dir, "lrap-linux-"+hostArch)
		if err := build(goCmd, root, "./cmd/lrap", hostArch, b.lrap); err != nil {
			return nil, err
		}
	}
	b.reference = filepath.Join(dir, "refproxy-linux-"+hostArch)
	if err := build(goCmd, root, "./bench/refproxy", hostArch, b.reference); err != nil {
		return nil, err
	}
	add := func(name, path, arch string) error {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		b.sizes = append(b.sizes, binarySize{Name: name, OS: "linux", Arch: arch, Bytes: fi.Size()})
		return nil
	}
	for _, arch := range sizeArchs {
		if err := add("lrap", filepath.Join(dir, "lrap-linux-"+arch), arch); err != nil {
			return nil, err
		}
	}
	if err := add("reference", b.reference, hostArch); err != nil {
		return nil, err
	}
	if info, err := buildinfo.ReadFile(b.lrap); err == nil {
		b.goVersion = info.GoVersion
	}
	return b, nil
}

// revision describes the source tree measured: the commit, and whether the
// working tree differs from it. Empty outside a git checkout.
func revision(root string) string {
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	cmd = exec.Command("git", "status", "--porcelain", "--untracked-files=no")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		rev += " with uncommitted changes"
	}
	return rev
}
