/**
 * Runs INSIDE the executor's worker, on import, before any guest code exists. Takes device and
 * storage APIs out of the worker's global: `navigator.gpu` (WebGPU: GPU memory no watchdog sees,
 * and a large native attack surface in the drivers) and `caches` (the Web Cache API, which makes
 * Deno write into the executor's private storage).
 *
 * An extra layer, never the wall: guest JavaScript can start a nested Worker whose global has them
 * again. The walls are elsewhere: an empty DENO_WEBGPU_BACKEND in the executor's environment gives
 * wgpu no backend (requestAdapter() resolves null), bubblewrap's /dev has no GPU node, and the
 * private storage is a size-capped tmpfs (or a host directory) that the host's watchdog measures
 * (host/executor-launch.ts, host/storage-usage.ts).
 */
function removeEverywhere(target: object | null, name: string): void {
  for (let o = target; o !== null; o = Object.getPrototypeOf(o)) {
    if (Object.hasOwn(o, name)) {
      try {
        delete (o as Record<string, unknown>)[name];
      } catch {
        // non-configurable: shadow it below
      }
    }
  }
  if (target !== null && name in target) {
    try {
      Object.defineProperty(target, name, { value: undefined, writable: false, configurable: false, enumerable: false });
    } catch {
      // leave it: the walls above hold regardless
    }
  }
}

const scope = globalThis as unknown as { navigator?: object };
if (scope.navigator) removeEverywhere(scope.navigator, "gpu");
removeEverywhere(globalThis, "caches");
removeEverywhere(globalThis, "CacheStorage");
removeEverywhere(globalThis, "Cache");
removeEverywhere(globalThis, "GPU");
removeEverywhere(globalThis, "GPUAdapter");

export {};
