import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface ProgressReporter {
  push: (chunk: string) => void;
  /** Sends what is buffered; resolves once every notification so far is sent. */
  flush: () => Promise<void>;
}

/**
 * Streams guest output as `notifications/progress` when the caller asked for progress (sent a
 * progressToken): the output is the message, coalesced so a chatty loop does not flood the client.
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
  return {
    push: (chunk) => {
      buffered += chunk;
      timer ??= setTimeout(flush, 50);
    },
    flush,
  };
}
