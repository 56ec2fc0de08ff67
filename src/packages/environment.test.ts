import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ensureBundle, importPlan, pruneEnvironments, requirementName, resolveEnvironment, type PackageEnvironment } from "./environment.js";
import type { InstalledPackage } from "./wheelhouse.js";

const pkg = (name: string, extra: Partial<InstalledPackage> = {}): InstalledPackage => ({
  name,
  version: "1.0",
  file: `wheels/${name}-1.0-py3-none-any.whl`,
  sha256: "0".repeat(64),
  requires: [],
  imports: [name.replace(/-/g, "_")],
  native: false,
  kind: "package",
  source: "test",
  ...extra,
});

describe("package environments", () => {
  test("a requirement's name is its PEP 503 name, whatever its specifiers", () => {
    assert.equal(requirementName("Pydantic>=2,<3"), "pydantic");
    assert.equal(requirementName("python_dateutil"), "python-dateutil");
    assert.equal(requirementName("msgspec[yaml]==0.23"), "msgspec");
  });

  test("packages whose closure holds a WebAssembly library are imported at executor start, the rest before the snapshot", () => {
    const environment: PackageEnvironment = {
      id: "0123456789abcdef",
      requested: ["pydantic", "sympy", "odd"],
      packages: [
        pkg("pydantic", { requires: ["pydantic-core", "typing-extensions"] }),
        pkg("pydantic-core", { native: true }),
        pkg("sympy", { requires: ["mpmath"], imports: ["isympy", "sympy", "tests", "_private"] }),
        pkg("mpmath"),
        pkg("odd"),
        pkg("typing-extensions"),
      ],
      fileOf: (p) => p.file,
    };
    assert.deepEqual(importPlan(environment), { snapshotImports: ["isympy", "sympy", "odd"], startImports: ["pydantic"] });
    // A module found loading a library while imported for the snapshot moves to the start.
    assert.deepEqual(importPlan(environment, ["odd"]), { snapshotImports: ["isympy", "sympy"], startImports: ["pydantic", "odd"] });
  });

  test("pruning keeps the most recently used environments and the one being made, and removes week-old ones", () => {
    const dir = mkdtempSync(join(tmpdir(), "wasmbox-envs-"));
    try {
      const now = Date.now() / 1000;
      const ids = Array.from({ length: 20 }, (_, i) => i.toString(16).padStart(16, "0"));
      ids.forEach((id, i) => {
        for (const name of [`${id}.bundle`, `${id}-314.0.7-abc.snapshot`]) {
          writeFileSync(join(dir, name), "x");
          utimesSync(join(dir, name), now - 60 * (20 - i), now - 60 * (20 - i)); // the last id is the newest
        }
      });
      pruneEnvironments(dir, ids[0]!); // the oldest is the one being made now: kept
      const left = new Set(readdirSync(dir).map((name) => name.slice(0, 16)));
      assert.equal(left.size, 16);
      assert.ok(left.has(ids[0]!));
      for (const id of ids.slice(5)) assert.ok(left.has(id), `${id} is among the 15 newest`);
      for (const id of ids.slice(1, 5)) assert.ok(!left.has(id), `${id} was pruned`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a bundle removed from the cache is made again by the same process (the base environment: tzdata)", () => {
    const cache = mkdtempSync(join(tmpdir(), "wasmbox-bundle-"));
    try {
      const base = resolveEnvironment("", []);
      assert.deepEqual(base.packages.map((p) => p.name), ["tzdata"]);
      const first = ensureBundle(cache, base);
      assert.ok(existsSync(first));
      rmSync(first);
      assert.equal(ensureBundle(cache, base), first);
      assert.ok(existsSync(first));
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
