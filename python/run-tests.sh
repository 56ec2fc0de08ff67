#!/usr/bin/env bash
# The Python client's test run, for CI and `npm test`: installs the package the way the README
# says, `pip install ./python` from the repository root (its build backend makes the assets), with
# pytest into a fresh venv under a temp dir, checks the one-line example, then runs python/tests
# against the installed package with Node.js removed from PATH (tests that build the package from
# a clone get the original PATH as WASMBOX_TEST_BUILD_PATH).
#   PYTHON=python3.12 python/run-tests.sh [pytest args...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python3}"

work="$(mktemp -d "${TMPDIR:-/tmp}/wasmbox-pytest.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$python" -m venv "$work/venv"
start_ns=$(date +%s%N)
(cd "$root" && "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check ./python pytest)
rm -rf "$here/build" "$here/src/wasmbox.egg-info"
echo "pip install ./python took $((($(date +%s%N) - start_ns) / 1000000)) ms"
export WASMBOX_TEST_BUILD_PATH="$PATH"

# A PATH without node: each directory holding node/npm/npx is replaced by a copy of it made of
# symlinks to everything else in it (on merged-/usr systems /bin and /usr/bin both hold node).
no_node_path="$work/venv/bin"
IFS=: read -r -a dirs <<<"$PATH"
n=0
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  if [ -e "$dir/node" ] || [ -e "$dir/npm" ] || [ -e "$dir/npx" ]; then
    n=$((n + 1))
    shadow="$work/path-$n"
    mkdir "$shadow"
    keep=()
    for entry in "$dir"/*; do
      case "${entry##*/}" in node | nodejs | npm | npx | corepack) ;; *) keep+=("$entry") ;; esac
    done
    [ "${#keep[@]}" -eq 0 ] || ln -s "${keep[@]}" "$shadow/"
    dir="$shadow"
  fi
  no_node_path="$no_node_path:$dir"
done
if PATH="$no_node_path" command -v node >/dev/null; then
  echo "run-tests.sh: could not take node off PATH" >&2
  exit 1
fi

# A snapshot cache of the run's own, seeded (hard links, else copies) from the user's: other wasmbox
# processes on the machine prune the user's cache down to a few snapshots, and must not delete
# the one this run's hosts are using.
user_cache="${WASMBOX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmbox}"
export WASMBOX_CACHE_DIR="$work/cache"
mkdir -p "$WASMBOX_CACHE_DIR"
for snapshot in "$user_cache"/python-*.snapshot; do
  [ -f "$snapshot" ] || continue
  ln "$snapshot" "$WASMBOX_CACHE_DIR/" 2>/dev/null || cp "$snapshot" "$WASMBOX_CACHE_DIR/"
done

# The tests must use the wheel's own host code, runtime files and Deno.
run() { (cd "$work" && env -u WASMBOX_DIST_DIR -u WASMBOX_PYODIDE_DIR -u WASMBOX_DENO PATH="$no_node_path" "$@"); }

echo "wasmbox from $(run "$work/venv/bin/python" -c 'import wasmbox; print(wasmbox.__file__)'), node on PATH: $(run sh -c 'command -v node || echo none')"
start_ns=$(date +%s%N)
out="$(run "$work/venv/bin/python" -c "from wasmbox import run_code; print(run_code('print(1+1)').stdout)")"
echo "one-line example printed '$out' in $((($(date +%s%N) - start_ns) / 1000000)) ms (interpreter start, host start, snapshot if not cached, one run)"
[ "$out" = "2" ] || { echo "run-tests.sh: the one-line example did not print 2" >&2; exit 1; }

run "$work/venv/bin/pytest" --rootdir "$here" -c "$here/pyproject.toml" -p no:cacheprovider "$here/tests" "$@"

# The runner the executor puts into the interpreter (src/runtimes/python/*.py), under plain CPython.
"$work/venv/bin/pytest" --rootdir "$root/src/runtimes/python" -p no:cacheprovider -q "$root/src/runtimes/python"
