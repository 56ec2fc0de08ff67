/**
 * Shows the host's first-run preparation (src/host/preparation-progress.ts) on stderr: on a
 * terminal one line that counts the seconds and is replaced when the step ends; otherwise (a pipe,
 * a log file, the Python client reading the stdio host's stderr) one plain line when a step starts
 * and one when it ends, each starting with "wasmbox: ".
 */
import { describePreparation, onPreparation, type PreparationEvent } from "../sandbox/preparation.js";

export interface DisplayStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** Starts showing preparation steps on `stream`; returns the function that stops it. */
export function showPreparation(stream: DisplayStream = process.stderr): () => void {
  const tty = stream.isTTY === true;
  /** Steps under way (by artefact path) and when each began, for the terminal's counting line. */
  const active = new Map<string, { text: string; sinceMs: number; waited: boolean }>();
  let ticker: ReturnType<typeof setInterval> | null = null;
  let lineShown = false;

  const clearLine = () => {
    if (lineShown) stream.write("\r\x1b[K");
    lineShown = false;
  };
  const drawLine = () => {
    const last = [...active.values()].at(-1);
    if (!last) return;
    clearLine();
    stream.write(`wasmbox: ${last.text} … ${Math.round((Date.now() - last.sinceMs) / 1000)} s`);
    lineShown = true;
  };
  const say = (line: string) => {
    clearLine();
    stream.write(`wasmbox: ${line}\n`);
  };

  const stop = onPreparation((event: PreparationEvent) => {
    const what = describePreparation(event);
    if (event.phase === "started" || event.phase === "waiting") {
      const text = event.phase === "started" ? what : `waiting for process ${event.ownerPid}, which is ${what}`;
      active.set(event.path, { text, sinceMs: Date.now(), waited: event.phase === "waiting" });
      if (tty) {
        drawLine();
        ticker ??= setInterval(drawLine, 1000);
        ticker.unref?.();
      } else {
        say(`${text}…`);
      }
      return;
    }
    const waited = active.get(event.path)?.waited === true;
    active.delete(event.path);
    if (active.size === 0 && ticker) {
      clearInterval(ticker);
      ticker = null;
    }
    if (event.phase === "finished") say(`${what.replace(/ \(once per machine\)$/, "")}: ${waited ? "made by the other process, waited" : "done in"} ${seconds(event.elapsedMs)}`);
    else say(`${what.replace(/ \(once per machine\)$/, "")}: failed after ${seconds(event.elapsedMs)}: ${event.error ?? "unknown error"}`);
    if (tty && active.size > 0) drawLine();
  });

  return () => {
    stop();
    if (ticker) clearInterval(ticker);
    ticker = null;
    clearLine();
  };
}
