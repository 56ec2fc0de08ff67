// ES2025 Uint8Array base64 helpers (in V8 and so in Deno and Node >= 22; the executor runs on Deno).
interface Uint8ArrayConstructor {
  fromBase64(text: string): Uint8Array;
}
