import { validateKey } from '../keys.js'
import { fail, flag, isRecord } from '../options/declare.js'
import { describe } from '../util/units.js'

/** What a principal may do. `admin`: invalidateTags, invalidatePrefix, clear. */
export type Permission = 'read' | 'write' | 'delete' | 'admin'
export const PERMISSIONS: readonly Permission[] = ['read', 'write', 'delete', 'admin']

/** What happens to a `distributed` limit's call when Redis cannot answer the limiter. */
export type OnLimiterError = 'local' | 'deny' | 'allow'

export interface RateLimitInput {
  /** Tokens per second (each key of a call costs one). */
  rate: number
  /** Bucket size: the most tokens spent at once after a quiet period. */
  burst: number
  /** One budget for every process of the fleet, kept in Redis (GCRA). @default false */
  distributed?: boolean
  /** distributed only: on a Redis failure, use this process's bucket ('local'), refuse ('deny') or pass ('allow'). @default 'local' */
  onL2Error?: OnLimiterError
}

export interface PrincipalInput {
  can: Permission[]
  /** Globs (`*`) relative to the view's namespace; a key is allowed when one matches. */
  keys: string[]
  rateLimit?: RateLimitInput
}

export interface AccessInput {
  principals: Record<string, PrincipalInput>
}

export interface ResolvedRateLimit {
  rate: number
  burst: number
  distributed: boolean
  onL2Error: OnLimiterError
}

/** Plain data (it crosses threads in `cache.handle`); patterns are compiled per thread. */
export interface ResolvedPrincipal {
  name: string
  can: Permission[]
  keys: string[]
  rateLimit: ResolvedRateLimit | undefined
}

export interface ResolvedAccess {
  /** In declaration order: a principal's index is its rate bucket in the shared buffer. */
  principals: ResolvedPrincipal[]
}

export const MAX_PRINCIPALS = 4096
export const MAX_PATTERNS = 256
/** Highest rate: the limiters count in whole microseconds. */
export const MAX_RATE = 1_000_000
export const MAX_BURST = 1_000_000_000
const NAME_RE = /^[A-Za-z0-9_.@-][A-Za-z0-9_.@:-]{0,127}$/

/** Reads the `access` option (hostile input): every field checked, unknown names refused. */
export function parseAccess(v: unknown, name: string): ResolvedAccess | false {
  if (v === false) return false
  if (!isRecord(v)) return fail(`${name} must be { principals: { <name>: { can, keys, rateLimit? } } } or false (got ${describe(v)}).`)
  for (const k of Object.keys(v)) if (k !== 'principals') fail(`Unknown ${name} option '${k}'. Known: principals.`)
  const ps = v.principals
  if (!isRecord(ps)) return fail(`${name}.principals must be an object { <name>: { can, keys, rateLimit? } } (got ${describe(ps)}).`)
  const names = Object.keys(ps)
  if (names.length === 0 || names.length > MAX_PRINCIPALS) fail(`${name}.principals must name 1 to ${MAX_PRINCIPALS} principals (got ${names.length}).`)
  return { principals: names.map((n) => parsePrincipal(n, ps[n], `${name}.principals.${n}`)) }
}

function parsePrincipal(n: string, v: unknown, at: string): ResolvedPrincipal {
  if (!NAME_RE.test(n)) fail(`Principal names are 1 to 128 characters of letters, digits, '_', '.', '@', ':' and '-', not starting with ':' (got ${describe(n)}).`)
  if (!isRecord(v)) return fail(`${at} must be { can, keys, rateLimit? } (got ${describe(v)}).`)
  for (const k of Object.keys(v)) if (k !== 'can' && k !== 'keys' && k !== 'rateLimit') fail(`Unknown option '${k}' in ${at}. Known: can, keys, rateLimit.`)
  const can = v.can
  if (!Array.isArray(can)) fail(`${at}.can must be a list of ${PERMISSIONS.map((p) => `'${p}'`).join(', ')} (got ${describe(can)}).`)
  for (const c of can as unknown[]) {
    if (!PERMISSIONS.includes(c as Permission)) fail(`${at}.can: unknown permission ${describe(c)}; known: ${PERMISSIONS.join(', ')}.`)
  }
  const keys = v.keys
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_PATTERNS) {
    fail(`${at}.keys must be a list of 1 to ${MAX_PATTERNS} key patterns such as 'user:*' ('*' = every key of the namespace) (got ${Array.isArray(keys) ? `${keys.length} patterns` : describe(keys)}).`)
  }
  for (const k of keys as unknown[]) {
    try {
      validateKey(k, 65_535)
    } catch (err) {
      fail(`${at}.keys: each pattern is a non-empty, well-formed string (got ${describe(k)}): ${(err as Error).message}`)
    }
  }
  return { name: n, can: [...new Set(can as Permission[])], keys: [...(keys as string[])], rateLimit: parseRateLimit(v.rateLimit, `${at}.rateLimit`) }
}

function parseRateLimit(v: unknown, at: string): ResolvedRateLimit | undefined {
  if (v === undefined) return undefined
  if (!isRecord(v)) return fail(`${at} must be { rate, burst, distributed?, onL2Error? } (got ${describe(v)}).`)
  for (const k of Object.keys(v)) {
    if (!['rate', 'burst', 'distributed', 'onL2Error'].includes(k)) fail(`Unknown option '${k}' in ${at}. Known: rate, burst, distributed, onL2Error.`)
  }
  const { rate, burst } = v
  if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0 || rate > MAX_RATE) {
    fail(`${at}.rate is tokens per second, a number above 0 and at most ${MAX_RATE} (got ${describe(rate)}).`)
  }
  if (typeof burst !== 'number' || !Number.isSafeInteger(burst) || burst < 1 || burst > MAX_BURST) {
    fail(`${at}.burst is the bucket size, a whole number from 1 to ${MAX_BURST} (got ${describe(burst)}).`)
  }
  const onL2Error = v.onL2Error ?? 'local'
  if (onL2Error !== 'local' && onL2Error !== 'deny' && onL2Error !== 'allow') fail(`${at}.onL2Error is 'local', 'deny' or 'allow' (got ${describe(onL2Error)}).`)
  const distributed = flag(v.distributed ?? false, `${at}.distributed`)
  return { rate: rate as number, burst: burst as number, distributed, onL2Error: onL2Error as OnLimiterError }
}
