// The table's structural invariants, checked from its memory (tests and stress runs).
import * as K from './layout.js'
import type { Layout } from './layout.js'
import { recSlot, recTag } from './records.js'

/** Every linked slot points at a record of its key in its shard; counters agree with the index; no lock or slot left mid-write. */
export function tableProblems(sab: SharedArrayBuffer, L: Layout): string[] {
  const i32 = new Int32Array(sab)
  const shardShift = 32 - Math.log2(L.nShards)
  const problems: string[] = []
  for (let shard = 0; shard < L.nShards; shard++) {
    const c = L.shardCtlOff / 4 + shard * K.kShardInts
    if (i32[c + K.S_LOCK] !== 0) problems.push(`shard ${shard} still locked`)
    let linked = 0
    const first = shard * L.buckets * K.kSlotsPerBucket
    for (let s = first; s < first + L.buckets * K.kSlotsPerBucket; s++) {
      const si = L.indexOff / 4 + s * K.kSlotInts
      if ((i32[si + K.SL_SEQ] as number) & 1) problems.push(`slot ${s} left mid-write`)
      const tag = i32[si + K.SL_TAG] as number
      if (tag === 0) continue
      linked++
      const ref = i32[si + K.SL_REF] as number
      if (ref < 0 || ref + K.kRecordHeader > L.shardDataBytes) {
        problems.push(`slot ${s} points outside its shard`)
        continue
      }
      const at = L.dataOff + shard * L.shardDataBytes + ref
      if (recTag(i32, at) !== tag) problems.push(`slot ${s}: record tag differs`)
      if (recSlot(i32, at) !== s) problems.push(`slot ${s}: record back-pointer differs`)
      if (recTag(i32, at) >>> shardShift !== shard) problems.push(`slot ${s}: key in the wrong shard`)
    }
    if (linked !== i32[c + K.S_ENTRIES]) problems.push(`shard ${shard}: ${linked} linked slots but entries = ${i32[c + K.S_ENTRIES]}`)
    const small = i32[c + K.S_SMALL_USED] as number
    const main = i32[c + K.S_MAIN_USED] as number
    if (small < 0 || small > L.smallBytes) problems.push(`shard ${shard}: small ring used ${small}`)
    if (main < 0 || main > L.shardDataBytes - L.smallBytes) problems.push(`shard ${shard}: main ring used ${main}`)
    const probation = i32[c + K.S_PROBATION] as number
    if (probation < 0 || probation > main) problems.push(`shard ${shard}: probationary bytes ${probation} of ${main} in main`)
  }
  return problems
}
