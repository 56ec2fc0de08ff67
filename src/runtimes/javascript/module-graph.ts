/**
 * Runs INSIDE the executor. Imports an npm package's ES module whose imports name other packages
 * ("@jitl/quickjs-ffi-types"): the executor runs with --no-npm and no import map, so such bare
 * specifiers cannot resolve. Each module of the graph is read from disk (the executor may read the
 * package directories it was given), its specifiers rewritten to blob: URLs of the modules they
 * name, and the entry imported from its blob: URL. Only static `from "…"`, `import "…"` and
 * `import("…")` forms with literal specifiers are handled: enough for bundler output (tsup/esbuild).
 */

declare const Deno: { readTextFile(path: string): Promise<string> };

const SPECIFIER = /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s*)(["'])([^"'\n]+)\2/g;

function dirname(path: string): string {
  return path.slice(0, path.lastIndexOf("/"));
}

function join(dir: string, relative: string): string {
  const parts = dir.split("/");
  for (const part of relative.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

/**
 * Imports `entry` (an absolute path) with bare specifiers resolved through `packages`
 * (specifier → absolute path of the module file).
 */
export async function importModuleGraph(entry: string, packages: Record<string, string>): Promise<Record<string, unknown>> {
  const urls = new Map<string, Promise<string>>();
  const load = (path: string, chain: string[]): Promise<string> => {
    if (chain.includes(path)) throw new Error(`import cycle through ${path}`);
    let url = urls.get(path);
    if (!url) {
      url = (async () => {
        const source = await Deno.readTextFile(path);
        const targets = new Map<string, string>();
        for (const match of source.matchAll(SPECIFIER)) {
          const specifier = match[3]!;
          if (targets.has(specifier) || specifier.startsWith("node:")) continue;
          const target = specifier.startsWith(".") ? join(dirname(path), specifier) : packages[specifier];
          if (!target) throw new Error(`cannot resolve ${JSON.stringify(specifier)} imported by ${path}`);
          targets.set(specifier, await load(target, [...chain, path]));
        }
        const rewritten = source.replace(SPECIFIER, (whole, lead: string, quote: string, specifier: string) =>
          targets.has(specifier) ? `${lead}${quote}${targets.get(specifier)}${quote}` : whole,
        );
        return URL.createObjectURL(new Blob([rewritten], { type: "text/javascript" }));
      })();
      urls.set(path, url);
    }
    return url;
  };
  return (await import(await load(entry, []))) as Record<string, unknown>;
}
