#!/usr/bin/env bash
# Runs go test with the given arguments, verbose, keeps the full log, prints
# the per-package summary and a "N passed, N failed" line, and on failure the
# output of every failed test. Exits with go test's status.
set -uo pipefail
log_dir="${LRAP_TEST_LOG_DIR:-.cache}"
mkdir -p "$log_dir"
log="$log_dir/test.log"

go test -v "$@" >"$log" 2>&1
status=$?

# Per-package lines (ok / FAIL / no test files), as plain go test prints them.
grep -E '^(ok|FAIL|\?)[[:space:]]' "$log" || true
passed=$(grep -cE '^[[:space:]]*--- PASS' "$log" || true)
failed=$(grep -cE '^[[:space:]]*--- FAIL' "$log" || true)
skipped=$(grep -cE '^[[:space:]]*--- SKIP' "$log" || true)
if [ "$status" -ne 0 ]; then
  echo
  echo "== failures (full log: $log) =="
  grep -nE -B2 -A30 '^[[:space:]]*--- FAIL|^panic:|^FAIL|build failed|cannot find|undefined:' "$log" | head -400
fi
echo
echo "Tests: $passed passed, $failed failed, $skipped skipped"
exit "$status"
