/** `wasmbox/http` (once package.json exports it): the HTTP server, to embed next to your own Sandbox. */
export {
  startHttpServer,
  DEFAULT_MAX_QUEUE,
  DEFAULT_SHUTDOWN_GRACE_MS,
  type HttpServer,
  type HttpServerOptions,
} from "./http-server.js";
export { DEFAULT_MAX_BODY_BYTES } from "./read-body.js";
export { HTTP_ERROR_CODES } from "./http-errors.js";
export { MAX_SESSION_TIMEOUT_MS } from "../protocol/session-request.js";
