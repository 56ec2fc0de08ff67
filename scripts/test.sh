#!/usr/bin/env bash
# The test command behind `npm test`: every TypeScript test file (Node 20's runner does not expand
# globs itself), then the Python client's suite in a fresh venv when it is present.
set -euo pipefail
cd "$(dirname "$0")/.."
# Make the machine's Python snapshot first (seconds, once per machine, said on stderr), so tests that
# read a command's stderr do not depend on which of them happened to start first on a cold cache.
node dist/cli/bin.js run -c "pass"
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
node --test --test-concurrency=2 --import tsx "${files[@]}"
if [ -x python/run-tests.sh ]; then
  python/run-tests.sh
fi
