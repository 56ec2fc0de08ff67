/**
 * Golden wire exchanges (test/fixtures/wire/*.json) against the real `serve --stdio`. The Python
 * client checks the same files (python/tests/test_wire_fixtures.py), so neither side can change
 * the contract alone.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));
const FIXTURES = fileURLToPath(new URL("./fixtures/wire/", import.meta.url));

interface Fixture {
  name: string;
  description: string;
  request: Record<string, unknown> & { id: string };
  response: Record<string, unknown>;
  streamed?: { stdout: string; stderr: string };
}

interface Exchange {
  reply: Record<string, unknown>;
  /** Event lines for the id that came before its final reply (later ones would be lost, failing `streamed`). */
  events: Record<string, unknown>[];
}

const fixtures: Fixture[] = readdirSync(FIXTURES)
  .filter((file) => file.endsWith(".json"))
  .sort()
  .map((file) => ({ name: file.slice(0, -".json".length), ...JSON.parse(readFileSync(FIXTURES + file, "utf8")) }));

/**
 * The reply seen through the fixture's shape: objects keep only the keys the fixture gives, at every
 * depth (a reply may gain fields), and `files` are sorted by path on both sides.
 */
function project(actual: unknown, expected: unknown, key = ""): unknown {
  if (Array.isArray(expected) && Array.isArray(actual)) {
    const [a, e] = key === "files" ? [byPath(actual), byPath(expected)] : [actual, expected];
    return a.length === e.length ? a.map((item, i) => project(item, e[i])) : a;
  }
  if (isObject(expected) && isObject(actual)) {
    return Object.fromEntries(Object.keys(expected).map((k) => [k, project(actual[k], expected[k], k)]));
  }
  return actual;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function byPath(files: unknown[]): unknown[] {
  return [...files].sort((a, b) => String((a as { path?: unknown }).path).localeCompare(String((b as { path?: unknown }).path)));
}

describe("wire fixtures against serve --stdio", () => {
  const exchanges = new Map<string, Promise<Exchange>>();
  let closed: Promise<number | null>;
  let child: ReturnType<typeof spawn>;

  before(() => {
    child = spawn(process.execPath, [BIN, "serve", "--stdio"], { stdio: ["pipe", "pipe", "inherit"] });
    closed = new Promise((resolve) => child.on("close", (code) => resolve(code)));
    const waiting = new Map<string, { events: Record<string, unknown>[]; resolve: (e: Exchange) => void }>();
    for (const fixture of fixtures) {
      exchanges.set(fixture.name, new Promise((resolve) => waiting.set(fixture.request.id, { events: [], resolve })));
    }
    let pending = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8");
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const message = JSON.parse(pending.slice(0, newline)) as Record<string, unknown>;
        pending = pending.slice(newline + 1);
        const entry = waiting.get(message.id as string);
        if (!entry) continue;
        if (message.event !== undefined) {
          entry.events.push(message);
        } else {
          waiting.delete(message.id as string);
          entry.resolve({ reply: message, events: entry.events });
        }
      }
    });
    // All at once: requests overlap, replies come back in any order, matched by id.
    for (const fixture of fixtures) child.stdin!.write(JSON.stringify(fixture.request) + "\n");
  });

  after(async () => {
    child.stdin!.end(JSON.stringify({ shutdown: true }) + "\n");
    assert.equal(await closed, 0);
  });

  it("has fixtures to check, each with a unique id", () => {
    assert.ok(fixtures.length >= 10, `only ${fixtures.length} fixtures`);
    assert.equal(new Set(fixtures.map((f) => f.request.id)).size, fixtures.length);
  });

  for (const fixture of fixtures) {
    it(`${fixture.name}: ${fixture.description}`, async () => {
      const { reply, events } = await exchanges.get(fixture.name)!;
      assert.ok(!("durationMs" in fixture.response), "fixtures leave durationMs out");
      assert.deepEqual(project(reply, fixture.response), project(fixture.response, fixture.response));
      if ("status" in fixture.response) assert.equal(typeof reply.durationMs, "number");
      if (fixture.streamed) {
        const joined = (kind: string) => events.filter((e) => e.event === kind).map((e) => e.data).join("");
        assert.deepEqual({ stdout: joined("stdout"), stderr: joined("stderr") }, fixture.streamed);
      } else {
        assert.deepEqual(events, [], "no events without stream");
      }
    });
  }
});
