import { createHash } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'

interface BufferEval {
  evalshaBuffer(sha: string, numKeys: number, ...rest: (string | Buffer | number)[]): Promise<unknown>
  evalBuffer(lua: string, numKeys: number, ...rest: (string | Buffer | number)[]): Promise<unknown>
}

/** A Lua script sent by EVALSHA, falling back to EVAL when the server lacks it (NOSCRIPT). */
export class Script {
  readonly sha: string
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex')
  }

  async run(client: Redis | Cluster, keys: string[], args: (string | Buffer | number)[]): Promise<unknown> {
    // ioredis has Buffer-reply variants of every command at run time; its types omit these two.
    const c = client as unknown as BufferEval
    try {
      return await c.evalshaBuffer(this.sha, keys.length, ...keys, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return c.evalBuffer(this.lua, keys.length, ...keys, ...args)
    }
  }
}

/**
 * KEYS[1]; ARGV: expected SHA-1 of the current bytes ('' = key must be absent),
 * new bytes, PX ('' = no expiry). Answers 1 when written, 0 when the key changed.
 */
export const CAS_SET = new Script(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
elseif (not cur) or redis.sha1hex(cur) ~= ARGV[1] then
  return 0
end
if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
`)

/**
 * Removes KEYS (all in one slot), answering what each held: its bytes when it was
 * a string, nil otherwise (absent, or a foreign type, which is removed too).
 */
export const TAKE = new Script(`
local out = {}
for i = 1, #KEYS do
  local t = redis.call('TYPE', KEYS[i])['ok']
  if t == 'string' then out[i] = redis.call('GET', KEYS[i]) else out[i] = false end
  if t ~= 'none' then redis.call('UNLINK', KEYS[i]) end
end
return out
`)

/** KEYS[1] a counter; creates it with ARGV[1] when absent. Answers its value. */
export const INIT_COUNTER = new Script(`
local v = redis.call('GET', KEYS[1])
if not v then v = ARGV[1]; redis.call('SET', KEYS[1], v) end
return v
`)

/** A random starting value for a new counter (below 2^48, far from small INCR results). */
export function randomCounterStart(): number {
  return 1_000_000_000 + Math.floor(Math.random() * 2 ** 47)
}

/** KEYS[1] a lock; deletes it only if it still holds ARGV[1] (our token). */
export const RELEASE_LOCK = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

/**
 * KEYS[1] a counter: INCR when it exists; when it was lost, re-create it with a
 * random start (ARGV[1]) so entries stamped with an older value never match again.
 */
export const BUMP_COUNTER = new Script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1])
return 0
`)

/**
 * Reads the keys named in ARGV on one Cluster node, whatever their slots (Redis 7
 * shebang flags: read-only, cross-slot). Nil for a missing key and, through MGET,
 * for a key of another type. The node refuses a key of a slot it does not serve
 * ("non local key": a stale slot map, a key that migrated away, an importing slot
 * without ASKING), and the whole script fails: the caller reads those keys again
 * through the Cluster's routing. The key names are not declared in KEYS, so
 * routing never rejects the mixed slots (CROSSSLOT).
 */
export const READ_KEYS = new Script(`#!lua flags=no-writes,allow-cross-slot-keys
local out = {}
for i = 1, #ARGV do out[i] = redis.call('MGET', ARGV[i])[1] end
return out
`)
