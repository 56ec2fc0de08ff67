#!/usr/bin/env bash
# The test command behind `npm test`: every TypeScript test file (Node 20's runner does not expand
# globs itself), then the Python client's suite in a fresh venv when it is present.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
node --test --test-concurrency=2 --import tsx "${files[@]}"
if [ -x python/run-tests.sh ]; then
  python/run-tests.sh
fi
