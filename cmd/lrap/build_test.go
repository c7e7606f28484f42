package main

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The layer ships one binary per Lambda architecture. As `make cross` builds
// it, it must be static (OS-only runtimes and container images may lack a
// matching libc), stripped, and free of build paths.
func TestBinaryIsStaticAndStrippedForBothArchitectures(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiles twice")
	}
	dir := t.TempDir()
	make := exec.Command("make", "-C", "../..", "--no-print-directory", "cross", "CROSS_DIR="+dir)
	if b, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make cross: %v\n%s", err, b)
	}
	for _, arch := range []struct {
		goarch  string
		machine elf.Machine
	}{{"amd64", elf.EM_X86_64}, {"arm64", elf.EM_AARCH64}} {
		t.Run(arch.goarch, func(t *testing.T) {
			out := filepath.Join(dir, "linux-"+arch.goarch, "lrap")
			f, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != arch.machine {
				t.Errorf("machine %v, want %v", f.Machine, arch.machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("binary has a dynamic loader (PT_INTERP): not static")
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("binary links shared libraries %v", libs)
			}
			if f.Section(".symtab") != nil {
				t.Error("binary has a symbol table: not stripped")
			}
			raw, _ := os.ReadFile(out)
			if wd, _ := filepath.Abs("../.."); bytes.Contains(raw, []byte(wd)) {
				t.Errorf("binary contains the build directory %s: not built with -trimpath", wd)
			}
			st, _ := os.Stat(out)
			t.Logf("linux/%s: %.2f MiB", arch.goarch, float64(st.Size())/(1<<20))
		})
	}
}
