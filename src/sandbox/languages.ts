import type { Language } from "../core/request.js";
import { RUNTIMES } from "../host/runtime-registry.js";

export interface LanguageInfo {
  name: Language;
  /** What runs it, e.g. "QuickJS (quickjs-emscripten 0.32.0)"; null when not installed. */
  version: string | null;
  installed: boolean;
  /** "included", or the command that adds it. */
  install: string;
}

/** Every language wasmbox knows, whether its runtime is installed, and how to add it. */
export function listLanguages(): LanguageInfo[] {
  return RUNTIMES.map((runtime) => {
    let version: string | null = null;
    try {
      version = runtime.version();
    } catch {
      version = null;
    }
    return { name: runtime.language, version, installed: version !== null, install: runtime.install };
  });
}

