import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { answerHostCall } from "./host-calls.js";

const reply = async (tools: Record<string, (args: Record<string, unknown>) => unknown>, name: unknown, args: unknown) =>
  JSON.parse(await answerHostCall(tools, name, args)) as { ok: boolean; value?: unknown; error?: string };

describe("answerHostCall", () => {
  test("calls a registered function with the keyword arguments and answers its value, undefined as null", async () => {
    assert.deepEqual(await reply({ add: ({ a, b }) => (a as number) + (b as number) }, "add", '{"a": 2, "b": 3}'), { ok: true, value: 5 });
    assert.deepEqual(await reply({ nothing: () => undefined }, "nothing", "{}"), { ok: true, value: null });
    assert.deepEqual(await reply({ later: async () => "done" }, "later", "{}"), { ok: true, value: "done" });
  });

  test("never calls an inherited name, an unknown one or a non-string", async () => {
    for (const name of ["constructor", "toString", "__proto__", "missing", 5]) {
      const r = await reply({ add: () => 1 }, name, "{}");
      assert.equal(r.ok, false, String(name));
      assert.match(r.error!, /no host function named/);
    }
  });

  test("answers an error for arguments that are not JSON keyword arguments, a throw, and a value JSON cannot carry", async () => {
    const tools = { f: () => 1, boom: () => { throw new Error("it broke"); }, big: () => 10n };
    assert.equal((await reply(tools, "f", "not json")).error, "host function arguments are not JSON");
    assert.equal((await reply(tools, "f", "[1, 2]")).error, "host function arguments must be keyword arguments");
    assert.deepEqual(await reply(tools, "boom", "{}"), { ok: false, error: "it broke" });
    assert.match((await reply(tools, "big", "{}")).error!, /not JSON-serialisable/);
  });
});
