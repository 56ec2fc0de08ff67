/**
 * Runs INSIDE the executor's Python worker: mounts an environment bundle's trees (the unpacked
 * wheels of a package set, environment-bundle.ts) read-only into Pyodide's file system. Nodes are
 * made on first lookup and a file's bytes are read from the bundle when it is first read: mounting
 * costs reading and parsing the header, not reading every file (sympy alone is ~30 MB in ~1500
 * files, nearly all of them already imported in the snapshot). Everything that would change a file answers EROFS, so a run cannot leave a modified
 * package behind for the next run of an executor it shares ("interpreter" isolation) or for a
 * session's later calls. (Guest JavaScript could still poke at these objects; it can poke at
 * everything in its worker. The walls are around the worker, not in it.)
 */
import { type BundleDir, type BundleFile, type BundleHeader } from "../../core/environment-bundle.js";

/** A bundle to mount: its header, and how to read `size` bytes of its data at `offset`. */
export interface BundleSource {
  header: BundleHeader;
  read(offset: number, size: number): Uint8Array;
}

// deno-lint-ignore no-explicit-any
type Emscripten = any;
// deno-lint-ignore no-explicit-any
type FsNode = any;

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/** A fixed time for every node: a bundle's files have no meaningful times, and equal ones keep .pyc checks stable. */
const BUNDLE_TIME = new Date(Date.UTC(2020, 0, 1));

/** Lays `overlay` over `tree`: its files (tagged with `source`) win, directories merge. */
function overlayTree(tree: BundleDir, overlay: BundleDir, source: number): void {
  for (const [name, entry] of Object.entries(overlay)) {
    if (Array.isArray(entry)) tree[name] = [entry[0], entry[1], source];
    else {
      const existing = Object.hasOwn(tree, name) ? tree[name] : undefined;
      const dir: BundleDir = existing && !Array.isArray(existing) ? existing : (tree[name] = {});
      overlayTree(dir, entry, source);
    }
  }
}

/**
 * Mounts each root of the first bundle, with the trees of the later ones (the bytecode compiled
 * when the snapshot was made) laid over them; returns the first's header and the mount points
 * (the interpreter-mode reset skips them).
 */
export function mountBundle(FS: Emscripten, errno: Record<string, number>, ...sources: BundleSource[]): { header: BundleHeader; mountPoints: string[] } {
  const { header } = sources[0]!;
  sources.slice(1).forEach((extra, i) => {
    for (const [path, tree] of Object.entries(extra.header.roots)) overlayTree((header.roots[path] ??= {}), tree, i + 1);
  });
  const readOnly = () => new FS.ErrnoError(errno.EROFS);
  const fsType = {
    mount(mount: { opts: { tree: BundleDir } }) {
      return createNode(null, "/", mount.opts.tree);
    },
    node_ops: {
      getattr(node: FsNode) {
        const size = node.tree ? 4096 : node.fileSize;
        return {
          dev: 0x7762, // "wb"
          ino: node.id,
          mode: node.mode,
          nlink: 1,
          uid: 0,
          gid: 0,
          rdev: 0,
          size,
          atime: BUNDLE_TIME,
          mtime: BUNDLE_TIME,
          ctime: BUNDLE_TIME,
          blksize: 4096,
          blocks: Math.ceil(size / 4096),
        };
      },
      lookup(parent: FsNode, name: string) {
        const entry = Object.hasOwn(parent.tree, name) ? parent.tree[name] : undefined;
        if (entry === undefined) throw new FS.ErrnoError(errno.ENOENT);
        return createNode(parent, name, entry);
      },
      readdir(node: FsNode) {
        return [".", "..", ...Object.keys(node.tree)];
      },
      setattr() {
        throw readOnly();
      },
      mknod() {
        throw readOnly();
      },
      rename() {
        throw readOnly();
      },
      unlink() {
        throw readOnly();
      },
      rmdir() {
        throw readOnly();
      },
      symlink() {
        throw readOnly();
      },
    },
    stream_ops: {
      read(stream: { node: FsNode }, buffer: Uint8Array, offset: number, length: number, position: number) {
        const contents: Uint8Array = (stream.node.contents ??= stream.node.load());
        if (position >= contents.length) return 0;
        const n = Math.min(length, contents.length - position);
        buffer.set(contents.subarray(position, position + n), offset);
        return n;
      },
      llseek(stream: { node: FsNode; position: number }, offset: number, whence: number) {
        let position = offset;
        if (whence === 1) position += stream.position;
        else if (whence === 2 && !stream.node.tree) position += stream.node.fileSize;
        if (position < 0) throw new FS.ErrnoError(errno.EINVAL);
        return position;
      },
      write() {
        throw readOnly();
      },
    },
  };

  function createNode(parent: FsNode | null, name: string, entry: BundleDir | BundleFile): FsNode {
    const isFile = Array.isArray(entry);
    const node = FS.createNode(parent, name, isFile ? S_IFREG | 0o444 : S_IFDIR | 0o555, 0);
    node.node_ops = fsType.node_ops;
    node.stream_ops = fsType.stream_ops;
    if (isFile) {
      // Read on first use: most of a package's files are never opened by a run (sympy's are in the snapshot).
      const [offset, size, source = 0] = entry;
      node.fileSize = size;
      node.contents = null;
      node.load = () => sources[source]!.read(offset, size);
    } else {
      node.tree = entry;
    }
    return node;
  }

  const mountPoints: string[] = [];
  for (const [path, tree] of Object.entries(header.roots)) {
    FS.mkdirTree(path);
    FS.mount(fsType, { tree }, path);
    mountPoints.push(path);
  }
  return { header, mountPoints };
}
