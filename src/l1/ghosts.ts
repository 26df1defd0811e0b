// S3-FIFO ghosts: per shard, a direct-mapped array of the tags of keys recently
// dropped (one tag per ghost slot; a later drop mapping to the same slot replaces
// it). A ghost found when its key is written again sends the key to main. Called
// only under the shard's lock (rings.ts).

/** Remembers a dropped key's tag; a used one is stored with its low bit cleared (a tag's is always set). */
export function ghostPut(i32: Int32Array, base: number, slots: number, shard: number, tag: number, used: boolean): void {
  i32[base + shard * slots + ((tag >>> 1) & (slots - 1))] = used ? tag ^ 1 : tag
}

/** Takes the key's ghost: 0 none, 1 dropped unused, 2 dropped after use. */
export function ghostTake(i32: Int32Array, base: number, slots: number, shard: number, tag: number): 0 | 1 | 2 {
  const idx = base + shard * slots + ((tag >>> 1) & (slots - 1))
  const v = i32[idx] as number
  if (v !== tag && v !== (tag ^ 1)) return 0
  i32[idx] = 0
  return v === tag ? 1 : 2
}
