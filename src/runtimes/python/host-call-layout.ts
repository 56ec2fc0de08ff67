/**
 * Host-call replies travel through shared memory because the worker is blocked in Python while it
 * waits: Int32 [0] state (0 waiting, 1 reply ready, 2 interrupted), [1] reply length in bytes,
 * then the UTF-8 JSON reply from byte HOST_CALL_DATA_OFFSET. Shared by the worker and the
 * executor's main isolate (which must not import the worker module itself).
 */
export const HOST_CALL_DATA_OFFSET = 16;
export const HOST_CALL_BUFFER_BYTES = 8 * 1024 * 1024 + HOST_CALL_DATA_OFFSET;
export const CALL_WAITING = 0;
export const CALL_REPLIED = 1;
export const CALL_INTERRUPTED = 2;
