/** CRC-32 (IEEE 802.3, as zlib) of the write-ahead log's records. */
import * as zlib from 'node:zlib'

let crcTable: Int32Array | undefined
/** Table-driven CRC-32 (IEEE 802.3, as zlib), for Node versions before 20.15 which lack zlib.crc32. */
export function crc32Fallback(data: Uint8Array, value = 0): number {
  if (!crcTable) {
    crcTable = new Int32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      crcTable[n] = c
    }
  }
  let c = ~value
  for (let i = 0; i < data.length; i++) c = (crcTable[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return ~c >>> 0
}
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32
/** CRC-32 (IEEE): zlib's native one when this Node has it (20.15+), else a table-driven one. */
export const crc32: (data: Uint8Array, value?: number) => number = nativeCrc32 ?? crc32Fallback
