#!/usr/bin/env bash
# Builds the wasmbox wheel into python/dist/ with `pip wheel`. The package's build backend
# (build_backend/wasmbox_build.py) first makes src/wasmbox/_assets when it is missing or stale: it
# compiles the TypeScript host into the package, vendors the npm packages the host imports and
# copies the Pyodide runtime files, running `npm ci --ignore-scripts` in the repository when its
# node_modules is missing. Needs Node.js and npm; the wheel it makes does not need Node.js.
# `pip install ./python` does the same build and installs the result.
#   PYTHON=python3.12 python/build.sh     # which Python runs pip (default python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"

rm -rf "$here/dist"
"$python" -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir "$here/dist" "$here"
rm -rf "$here/build" "$here/src/wasmbox.egg-info"
ls -l "$here"/dist/*.whl
