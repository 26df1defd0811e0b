import { Script } from '../l2/scripts.js'

/**
 * The distributed rate limit: GCRA (the generic cell rate algorithm, a token
 * bucket kept as one number) in one Lua script, so every process of the fleet
 * spends one budget. KEYS[1] = rateLimitKey(namespace, principal), holding the
 * theoretical arrival time (TAT) in microseconds of the Redis server's clock
 * (TIME: one clock for every process, whatever their own clocks say).
 * ARGV: interval (µs per token), tolerance (burst × interval, µs), cost (tokens).
 * Answers { 1, 0 } when the tokens were spent, or { 0, wait µs } (nothing spent).
 * The key expires (PX) when the bucket is full again, so idle principals cost no
 * memory. A stored value that is not a number, or lies beyond what the arithmetic
 * can produce (another writer), is ignored. Before Redis 5 a script that read
 * TIME may not write unless it replicates effects (replicate_commands: a no-op
 * since Redis 7). An ACL user needs +time (called from the script), +get, +set
 * and +evalsha/+eval on `~__nc|rl|<namespace>|*`.
 */
export const GCRA = new Script(`
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if (not tat) or tat < now or tat > now + tolerance then tat = now end
local nxt = tat + cost * interval
local over = nxt - now - tolerance
if over > 0.5 then return {0, string.format('%.0f', math.ceil(over))} end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.max(1, math.ceil((nxt - now) / 1000)))
return {1, '0'}
`)

/** The script's answer: 0 = allowed, else milliseconds to wait (rounded up). Throws on a malformed reply. */
export function gcraWaitMs(reply: unknown): number {
  if (!Array.isArray(reply) || reply.length !== 2) throw new Error('the rate-limit script answered something else than { allowed, wait }')
  const [allowed, wait] = reply as [unknown, unknown]
  if (allowed === 1) return 0
  const us = Number(Buffer.isBuffer(wait) ? wait.toString('latin1') : wait)
  if (!Number.isFinite(us) || us < 0) throw new Error('the rate-limit script answered a wait that is not a number')
  return Math.max(1, Math.ceil(us / 1000))
}
