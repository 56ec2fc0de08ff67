import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import { activePreparations, describePreparation, onPreparation, type PreparationEvent } from "../sandbox/preparation.js";

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface ProgressReporter {
  push: (chunk: string) => void;
  /** At the end of the call: sends what is buffered; resolves once every notification so far is sent. */
  flush: () => Promise<void>;
  /** Whether the flush at the end of the call had something to send (a notification right before the result). */
  readonly sentAtEnd: boolean;
}

/**
 * Streams guest output as `notifications/progress` when the caller asked for progress (sent a
 * progressToken): the output is the message, coalesced so a chatty loop does not flood the client.
 * While the call waits for a first-run preparation (the memory snapshot, a package environment:
 * seconds), lines saying what is made and when it is done go the same way, so a client can show
 * why the first call is slow.
 */
export function progressReporter(extra: Extra): ProgressReporter | null {
  const progressToken = extra._meta?.progressToken;
  if (progressToken === undefined) return null;
  let buffered = "";
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  let chain = Promise.resolve();
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    // After a cancellation the client has forgotten the token: progress would only be noise.
    if (buffered && !extra.signal.aborted) {
      const message = buffered;
      buffered = "";
      sent++;
      chain = chain
        .then(() => extra.sendNotification({ method: "notifications/progress", params: { progressToken, progress: sent, message } }))
        .catch(() => {});
    }
    return chain;
  };
  const push = (chunk: string) => {
    buffered += chunk;
    timer ??= setTimeout(flush, 50);
  };
  const preparationLine = (event: PreparationEvent) => {
    const what = describePreparation(event);
    const seconds = (event.elapsedMs / 1000).toFixed(1);
    if (event.phase === "started") return `wasmbox: ${what}…\n`;
    if (event.phase === "waiting") return `wasmbox: ${what}, in another process…\n`;
    if (event.phase === "finished") return `wasmbox: done in ${seconds} s\n`;
    return `wasmbox: ${what} failed after ${seconds} s: ${event.error ?? "unknown error"}\n`;
  };
  for (const event of activePreparations()) push(`wasmbox: ${describePreparation(event)}, for ${(event.elapsedMs / 1000).toFixed(0)} s so far…\n`);
  const unsubscribe = onPreparation((event) => push(preparationLine(event)));
  let sentAtEnd = false;
  return {
    push,
    flush: () => {
      unsubscribe();
      sentAtEnd = buffered.length > 0 && !extra.signal.aborted;
      return flush();
    },
    get sentAtEnd() {
      return sentAtEnd;
    },
  };
}
