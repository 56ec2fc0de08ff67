#!/usr/bin/env bash
# Builds the wasmbox wheel into python/dist/: compiles the TypeScript host into the package
# (src/wasmbox/_assets/dist), copies its package.json and the Pyodide runtime files next to it,
# then runs `pip wheel`. Needs Node.js and `npm ci` done (for tsc and the pyodide npm package);
# the wheel it makes does not need Node.js.
#   PYTHON=python3.12 python/build.sh     # which Python runs pip (default python3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python3}"
assets="$here/src/wasmbox/_assets"

node_version="$(node -p 'require(process.argv[1]).version' "$root/package.json")"
py_version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/pyproject.toml")"
if [ "$node_version" != "$py_version" ]; then
  echo "build.sh: package.json version $node_version differs from python/pyproject.toml version $py_version" >&2
  exit 1
fi
init_version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$here/src/wasmbox/__init__.py")"
if [ "$init_version" != "$py_version" ]; then
  echo "build.sh: src/wasmbox/__init__.py __version__ $init_version differs from pyproject.toml $py_version" >&2
  exit 1
fi

pyodide_dir="${WASMBOX_PYODIDE_DIR:-$(cd "$root" && node -p 'require("path").dirname(require.resolve("pyodide/package.json"))')}"
tsc="$root/node_modules/.bin/tsc"
[ -x "$tsc" ] || { echo "build.sh: $tsc not found; run npm ci first" >&2; exit 1; }

rm -rf "$assets" "$here/build" "$here/dist"
mkdir -p "$assets/pyodide"
# Compile into the package (not the shared dist/), without declarations, and without type
# checking: that is `npm run build`'s job. The JavaScript (source maps included) is byte for byte
# npm's, so both share one cached Python snapshot, whose name hashes the executor's files.
"$tsc" -p "$root/tsconfig.json" --outDir "$assets/dist" --declaration false --noCheck
chmod +x "$assets/dist/cli/bin.js"
node "$root/scripts/copy-assets.mjs" "$assets/dist"
# dist/cli/main.js reads ../../package.json for --version; "type": "module" makes dist/*.js ES modules.
node -e '
  const pkg = require(process.argv[1]);
  require("fs").writeFileSync(process.argv[2], JSON.stringify({ name: pkg.name, version: pkg.version, type: "module", license: pkg.license }, null, 2) + "\n");
' "$root/package.json" "$assets/package.json"
# The host's one npm dependency on the paths the Python client runs (zod: the request schemas),
# vendored as its ES modules; the host runs with --no-config, so an import map names it.
zod_dir="$(cd "$root" && node -p 'require("path").dirname(require.resolve("zod/package.json"))')"
"$python" - "$zod_dir" "$assets/node_modules/zod" <<'PY'
import os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
for folder, _dirs, files in os.walk(src):
    rel = os.path.relpath(folder, src)
    if rel.split(os.sep)[0] == "src":
        continue
    for name in files:
        if name.endswith(".js") or name in ("package.json", "LICENSE"):
            os.makedirs(os.path.join(dst, rel), exist_ok=True)
            shutil.copy2(os.path.join(folder, name), os.path.join(dst, rel, name))
PY
printf '{"imports": {"zod": "./node_modules/zod/index.js", "zod/": "./node_modules/zod/"}}\n' > "$assets/import-map.json"
for name in pyodide.mjs pyodide.asm.mjs pyodide.asm.wasm python_stdlib.zip package.json pyodide-lock.json; do
  cp "$pyodide_dir/$name" "$assets/pyodide/$name"
done

"$python" -m pip wheel --quiet --no-deps --wheel-dir "$here/dist" "$here"
rm -rf "$here/build" "$here/src/wasmbox.egg-info"
ls -l "$here"/dist/*.whl
