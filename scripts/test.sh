#!/usr/bin/env bash
# The test command behind `npm test`: every TypeScript test file (Node 20's runner does not expand
# globs itself), then the Python client's suite in a fresh venv when it is present. Last, whatever
# the outcome, it checks that the run left no process behind (a server, a host, an executor): the
# suite fails, naming them, if any is still running; they are killed by pid.
set -euo pipefail
cd "$(dirname "$0")/.."

# Every process this run starts inherits the marker, which is how the check below tells them from
# other processes on the machine (executors, with their clean environment, are known otherwise).
WASMBOX_TEST_RUN="$$-$(date +%s%N)"
export WASMBOX_TEST_RUN
check_leftovers() {
  local status=$?
  node scripts/leftover-processes.mjs "$$" || status=1
  exit "$status"
}
trap check_leftovers EXIT

# Make the machine's Python snapshot first (seconds, once per machine, said on stderr), so tests that
# read a command's stderr do not depend on which of them happened to start first on a cold cache.
node dist/cli/bin.js run -c "pass"
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
node --test --test-concurrency=2 --import tsx "${files[@]}"
if [ -x python/run-tests.sh ]; then
  python/run-tests.sh
fi
