/**
 * A guest's call of a host function, answered on the host: only names registered for the run are
 * callable (own properties: never `constructor` or anything inherited), the arguments are keyword
 * arguments as JSON, and the reply is always JSON text, also when the function throws or returns
 * something JSON cannot carry.
 */
/** A function the guest may call by name; it gets the keyword arguments as an object. */
export type HostFunction = (args: Record<string, unknown>) => unknown;

export type HostCallReply = { ok: true; value: unknown } | { ok: false; error: string };

/** Calls the named host function with the guest's JSON arguments; resolves with the reply's JSON text. */
export async function answerHostCall(tools: Readonly<Record<string, HostFunction>>, name: unknown, rawArgs: unknown): Promise<string> {
  return replyText(await callReply(tools, name, rawArgs), name);
}

async function callReply(tools: Readonly<Record<string, HostFunction>>, name: unknown, rawArgs: unknown): Promise<HostCallReply> {
  if (typeof name !== "string" || !Object.hasOwn(tools, name)) {
    return { ok: false, error: `no host function named ${JSON.stringify(name)} is registered for this run` };
  }
  let args: unknown;
  try {
    args = JSON.parse(String(rawArgs));
  } catch {
    return { ok: false, error: "host function arguments are not JSON" };
  }
  if (typeof args !== "object" || args === null || Array.isArray(args)) {
    return { ok: false, error: "host function arguments must be keyword arguments" };
  }
  try {
    return { ok: true, value: await tools[name]!(args as Record<string, unknown>) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/** The reply as JSON text: `undefined` becomes null; a value JSON cannot carry becomes an error reply. */
export function replyText(reply: HostCallReply, name: unknown): string {
  try {
    return JSON.stringify(reply.ok ? { ok: true, value: reply.value === undefined ? null : reply.value } : reply);
  } catch (error) {
    return JSON.stringify({ ok: false, error: `host function ${String(name)} returned a value that is not JSON-serialisable: ${(error as Error).message}` });
  }
}
