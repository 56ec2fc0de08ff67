import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { WasmboxError } from "../core/errors.js";
import { validateRunRequest, type RunRequest } from "../protocol/run-request.js";
import { DEFAULT_SESSION_MAX_LIFETIME_MS, type Session } from "../sandbox/session.js";
import type { SandboxService } from "../service/sandbox-service.js";
import type { McpSessionScope } from "./mcp-session-scope.js";
import { progressReporter, type Extra } from "./progress-reporter.js";
import { errorToolResult, toCallToolResult } from "./tool-result.js";

/** Default time the session interpreter may go without a call: the MCP HTTP session's own idle time. */
export const DEFAULT_MCP_SESSION_IDLE_MS = 30 * 60 * 1000;

export interface SessionToolsOptions {
  /** Close the interpreter after this long without a call, in milliseconds. Default 30 minutes. */
  idleTimeoutMs?: number;
  /** Close the interpreter this long after it started, in milliseconds. Default 1 hour. */
  maxLifetimeMs?: number;
}

function duration(ms: number): string {
  const h = ms / 3_600_000;
  if (h >= 1 && Number.isInteger(h)) return `${h} h`;
  const m = ms / 60_000;
  return m >= 1 && Number.isInteger(m) ? `${m} min` : `${ms / 1000} s`;
}

const STARTS_FRESH = "The next run with session: true starts a fresh interpreter: re-create there whatever the code needs.";

/** The conversation's persistent Python interpreter, as run_code's `session: true` and session_reset use it. */
export interface McpPythonSession {
  /** When the interpreter is closed on its own, for the tool description: e.g. "closed after 30 min idle or 1 h". */
  readonly lifetimes: string;
  /** Runs a Python request in the interpreter, opening it on first use. */
  run(request: RunRequest, extra: Extra): Promise<CallToolResult>;
  /** Discards the interpreter and everything it held. */
  reset(): Promise<CallToolResult>;
}

/**
 * The interpreter behind `run_code` with `session: true`, one per MCP session (createMcpServer()
 * makes it). It is one session of the service every transport uses (so it counts against the same
 * limits and is cancelled and closed the same way), opened on the first session run and kept for
 * the MCP session, so variables, imports and files carry over; it is closed when the MCP session
 * ends (stdio: end of input; HTTP: DELETE, idle reaping, shutdown), on session_reset, or by its own
 * idle and lifetime timers. Over HTTP each MCP session has its own scope, so one client never
 * sees another's state.
 *
 * When the interpreter is lost (it died with a call that had to be killed, or was reaped between
 * calls) the model is told before anything else runs: code written against state that no longer
 * exists must not silently run in a fresh interpreter.
 */
export function mcpPythonSession(service: SandboxService, scope: McpSessionScope, options: SessionToolsOptions = {}): McpPythonSession {
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_MCP_SESSION_IDLE_MS;
  const maxLifetimeMs = options.maxLifetimeMs ?? DEFAULT_SESSION_MAX_LIFETIME_MS;
  /** The interpreter, or its opening; null until the first session run and after it is dropped. */
  let current: Promise<Session> | null = null;
  /** Set when the interpreter was lost in a call whose answer the model never saw (it cancelled it). */
  let unreported: string | null = null;

  /** Forgets `session` (when it is still the current one) and makes sure it is closed. */
  const drop = (opening: Promise<Session>, session: Session) => {
    if (current === opening) current = null;
    void service.closeSession(session.id).catch(() => {});
  };
  const close = async (opening: Promise<Session> | null) => {
    const session = await opening?.catch(() => null);
    if (session) await service.closeSession(session.id).catch(() => {});
    return session;
  };
  scope.onClose(async () => {
    const opening = current;
    current = null;
    await close(opening);
  });

  const open = (): Promise<Session> => {
    if (current) return current;
    const opening = service.openSession({ language: "python", idleTimeoutMs, maxLifetimeMs });
    current = opening;
    opening.catch(() => {
      if (current === opening) current = null;
    });
    return opening;
  };

  const lostResult = (code: string, what: string): CallToolResult =>
    errorToolResult(code, `${what} Everything earlier session runs defined (variables, imports, files) is gone, and this code did not run. ${STARTS_FRESH}`);

  const lifetimes = `closed after ${duration(idleTimeoutMs)} idle or ${duration(maxLifetimeMs)}`;

  return {
    lifetimes,
    async run(args, extra) {
      const progress = progressReporter(extra);
      let opening: Promise<Session> | undefined;
      let session: Session | undefined;
      try {
        if (scope.closed) return errorToolResult("SESSION_CLOSED", "this MCP session has ended.");
        const request = validateRunRequest({ ...args, language: "python" }); // a bad path answers before an interpreter is started
        if (unreported) {
          const what = unreported;
          unreported = null;
          return lostResult("SESSION_DEAD", what);
        }
        opening = open();
        session = await opening;
        const result = await service.run({ run: request, sessionId: session.id, signal: extra.signal, onStdout: progress?.push, onStderr: progress?.push });
        await progress?.flush();
        const answer = toCallToolResult(result);
        if (session.state !== "open") {
          drop(opening, session);
          if (extra.signal.aborted) {
            unreported = "The previous session run was cancelled, and the interpreter was stopped with it.";
          } else {
            const first = answer.content[0] as { type: "text"; text: string };
            first.text +=
              `\n--- session ---\nThe interpreter did not survive this call (status ${result.status}): everything earlier ` +
              "session runs defined is gone. The next run with session: true starts a fresh interpreter.";
          }
        }
        return answer;
      } catch (error) {
        await progress?.flush();
        if (!(error instanceof WasmboxError)) throw error;
        const lost = error.code === "SESSION_CLOSED" || error.code === "SESSION_DEAD";
        if (lost && opening && session) {
          drop(opening, session);
          unreported = null;
        }
        switch (error.code) {
          case "SESSION_CLOSED":
            // Reaped between calls by its idle or lifetime timer.
            return lostResult(error.code, `The interpreter was closed (it is ${lifetimes}).`);
          case "SESSION_DEAD":
            return lostResult(error.code, "The interpreter had stopped (an earlier call had to be stopped, and the interpreter with it).");
          case "TOO_MANY_SESSIONS":
            return errorToolResult(error.code, `${error.message}. No persistent interpreter is free on this server now: run without session (fresh each call), or retry later.`);
          default:
            return errorToolResult(error.code, error.message);
        }
      }
    },
    async reset() {
      const discarded = current;
      current = null;
      unreported = null;
      const had = (await discarded?.catch(() => null))?.state === "open";
      await close(discarded);
      return {
        content: [
          {
            type: "text",
            text: had
              ? "session reset: the interpreter and everything it held are gone; the next session run starts a fresh one."
              : "session reset: there was no interpreter to discard; the next session run starts a fresh one.",
          },
        ],
      };
    },
  };
}
