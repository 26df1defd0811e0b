import { rdbLength } from './dump_payload.js'

/**
 * The string a DUMP payload holds (one that passed `dumpProblem`): raw, an RDB
 * integer encoding, or LZF-compressed (Redis compresses strings in DUMP when
 * rdbcompression is on). Answers why not when it cannot be read; the output is
 * bounded by the payload's own declared length, checked against `maxBytes`.
 */
export function dumpString(payload: Buffer, maxBytes: number): Buffer | string {
  const end = payload.length - 10
  const l = rdbLength(payload, 1, end)
  if (!l) return 'bad string length'
  if (l.special === undefined) return payload.subarray(l.next, l.next + l.len)
  if (l.special === 0) return Buffer.from(String(payload.readInt8(l.next)))
  if (l.special === 1) return Buffer.from(String(payload.readInt16LE(l.next)))
  if (l.special === 2) return Buffer.from(String(payload.readInt32LE(l.next)))
  if (l.special !== 3) return `unknown string encoding ${l.special}`
  const c = rdbLength(payload, l.next, end)
  const u = c && rdbLength(payload, c.next, end)
  if (!c || !u) return 'bad compressed string'
  if (u.len > maxBytes) return `the string is ${u.len} bytes, over ${maxBytes}`
  return lzfDecompress(payload.subarray(u.next, u.next + c.len), u.len) ?? 'the compressed string does not decompress'
}

/** LZF (liblzf) decompression to exactly `outLen` bytes; undefined when the input is not valid LZF of that length. */
export function lzfDecompress(input: Uint8Array, outLen: number): Buffer | undefined {
  const out = Buffer.alloc(outLen)
  let ip = 0
  let op = 0
  while (ip < input.length) {
    const ctrl = input[ip++] as number
    if (ctrl < 32) {
      const len = ctrl + 1
      if (op + len > outLen || ip + len > input.length) return undefined
      out.set(input.subarray(ip, ip + len), op)
      ip += len
      op += len
    } else {
      let len = ctrl >> 5
      if (len === 7) {
        if (ip >= input.length) return undefined
        len += input[ip++] as number
      }
      if (ip >= input.length) return undefined
      const ref = op - ((ctrl & 0x1f) << 8) - 1 - (input[ip++] as number)
      len += 2
      if (ref < 0 || op + len > outLen) return undefined
      // Byte by byte: the reference may overlap what is being written.
      for (let i = 0; i < len; i++) out[op++] = out[ref + i] as number
    }
  }
  return op === outLen ? out : undefined
}
