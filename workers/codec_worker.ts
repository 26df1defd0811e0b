// The codec pool's worker (piscina entry; src/codec/codec_pool.ts starts it). It
// does the byte work of large values: LZ4-compresses msgpack bytes for a write and
// inflates an LZ4 payload for a read. msgpackr stays on the calling thread: handing
// a JS value to a thread is a structured clone that costs about as much as packing
// it (bench/codec_pool.ts measured both), so only bytes cross, as transferred
// ArrayBuffers (no copy in the message).
//
// Imports only pure modules: lz4-napi, piscina, src/codec/value_codec.
import { compress } from 'lz4-napi'
import { move, transferableSymbol, valueSymbol } from 'piscina'
import { inflate } from '../src/codec/value_codec.js'

/**
 * What the pool asks for. `bytes` is a view at the start of a transferred
 * ArrayBuffer (possibly longer than the view: the pool reuses its buffers).
 */
export type CodecTask =
  | { op: 'compress'; bytes: Uint8Array }
  /** Inflating refuses (as an error reply) a payload that claims or inflates to more than `maxValueBytes`. */
  | { op: 'inflate'; bytes: Uint8Array; maxValueBytes: number }
  | { op: 'ping' }
  /** Test hook: makes this thread die the way a native crash or a bug would. */
  | { op: 'crash'; how: 'exit' | 'throw' }

/**
 * What comes back, with every ArrayBuffer in it transferred:
 * - `bytes`: the result in a buffer made for it (compressed bytes, or the inflated
 *   msgpack bytes), or null when LZ4 did not make the value smaller (the caller
 *   keeps the raw bytes) or on error;
 * - `input`: the task's own buffer, handed back for the pool to reuse, so the
 *   calling thread does not allocate (and fault in, and later collect) a fresh
 *   buffer per call;
 * - `error`: a codec failure as data (the pool turns it into the inline error);
 * - `micros`: how long the work took here, for the pool's cost model.
 */
export interface CodecReply {
  bytes: Uint8Array | null
  input: ArrayBuffer | null
  error: string | null
  micros: number
}

/**
 * An exact-size copy in an ArrayBuffer of our own. lz4-napi answers Buffers over
 * memory V8 cannot hand to another thread (such backing stores are copied into the
 * message and again on the receiving thread); one copy here, on this thread, makes
 * the reply a plain transfer for the caller.
 */
function owned(b: Uint8Array): Uint8Array {
  const copy = new Uint8Array(b.length)
  copy.set(b)
  return copy
}

function reply(task: { bytes: Uint8Array }, bytes: Uint8Array | null, error: string | null, start: number): unknown {
  const input = task.bytes.buffer as ArrayBuffer
  const r: CodecReply = { bytes, input, error, micros: (performance.now() - start) * 1000 }
  const transfer: ArrayBuffer[] = bytes === null ? [input] : [bytes.buffer as ArrayBuffer, input]
  // piscina's Transferable protocol: the value, and what to transfer with it.
  return move({ [transferableSymbol]: transfer, [valueSymbol]: r } as never)
}

export default async function codecTask(task: CodecTask): Promise<unknown> {
  const start = performance.now()
  switch (task.op) {
    case 'compress': {
      // The async form, not compressSync: lz4-napi's output Buffers are freed by
      // finalizers that run only when this thread's event loop turns, and piscina's
      // worker loop (atomics: 'sync') never lets it turn while tasks are synchronous,
      // so every compressSync output stayed allocated (RSS grew ~100 MB/s under load).
      // Awaiting the libuv job turns the loop; the compression runs on libuv's threadpool.
      const raw = task.bytes
      const packed = await compress(Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength))
      return reply(task, packed.length < raw.length ? owned(packed) : null, null, start)
    }
    case 'inflate': {
      try {
        return reply(task, owned(inflate(task.bytes, true, task.maxValueBytes)), null, start)
      } catch (err) {
        return reply(task, null, err instanceof Error ? err.message : String(err), start)
      }
    }
    case 'ping':
      return { bytes: null, input: null, error: null, micros: 0 } satisfies CodecReply
    case 'crash':
      if (task.how === 'exit') process.exit(1)
      // An exception outside any task: the thread's 'error' event, as a bug in a
      // callback would raise. The task never answers.
      queueMicrotask(() => {
        throw new Error('codec worker: crash requested (test hook)')
      })
      return new Promise(() => {})
  }
}
