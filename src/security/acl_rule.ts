import { InvalidOptionError } from '../errors.js'
import { channelFor, dataKey, LEGACY_CHANNEL, LOCK_PREFIX, lockKey, PING_PREFIX, pingKey, RATE_LIMIT_PREFIX, rateLimitKey, TAG_EPOCH_PREFIX, tagKey } from '../keys.js'
import { validateNamespace } from '../options/namespace.js'
import { describe } from '../util/units.js'

/*
 * The least-privilege Redis ACL rule of one namespace (`nearcache acl`), built
 * from the key shapes of src/keys.ts. Every command nearcache (and ioredis on its
 * behalf) sends, and nothing else; the keys and channel of the namespace and its
 * child namespaces, and nothing else. Redis 7.0 or later (`%R~` read-only keys).
 */

/**
 * The commands, each with why it is needed. Commands run inside nearcache's Lua
 * scripts (src/l2/scripts.ts) are checked by Redis too, so they are listed.
 */
export const ACL_COMMANDS: readonly { command: string; why: string }[] = [
  { command: 'info', why: "ioredis' ready check on every connection (server facts and key counts, no key names)" },
  { command: 'cluster|info', why: "a Cluster client's ready check, and health()'s cluster state" },
  { command: 'cluster|slots', why: 'a Cluster client learns which node holds which slot' },
  { command: 'client|setname', why: "a Cluster client names its slot-refresh and subscriber connections (refused, it is ignored but fills ACL LOG)" },
  { command: 'mget', why: 'reads: get, getMany, tag epochs, health()' },
  { command: 'set', why: 'writes, new tag epochs, the stampede lock (SET NX PX)' },
  { command: 'unlink', why: 'clear, invalidatePrefix' },
  { command: 'scan', why: 'clear, invalidatePrefix (SCAN MATCH on every master)' },
  { command: 'evalsha', why: 'the scripts: delete, conditional writes, tag epochs, lock release' },
  { command: 'eval', why: 'the same scripts when the server does not hold them yet (NOSCRIPT)' },
  { command: 'get', why: 'inside the scripts' },
  { command: 'type', why: 'inside the delete script' },
  { command: 'del', why: 'inside the lock-release script' },
  { command: 'exists', why: 'inside the invalidateTags script' },
  { command: 'incr', why: 'inside the invalidateTags script' },
  { command: 'publish', why: 'announcing changes on the invalidation channel' },
  { command: 'subscribe', why: "listening to the namespace root's invalidation channel" },
]


/** ACL user names this command prints: no whitespace, quotes or shell specials. */
const USER_NAME = /^[A-Za-z0-9_.:@-]{1,128}$/

export interface AclRuleOptions {
  namespace: string
  /** The ACL user; default `nearcache-<namespace>`. */
  user?: string
  /** Also the pre-protocol-1 global channel `__nc|inv` (caches with `invalidation: { legacyChannel: true }`). */
  legacyChannel?: boolean
  /** Also the distributed rate limiter's bucket keys. */
  rateLimit?: boolean
  /**
   * Re-apply to an existing user without dropping its passwords: `resetkeys
   * resetchannels clearselectors -@all` instead of `reset` (which also removes
   * every password).
   */
  keepPasswords?: boolean
}

export interface AclRule {
  user: string
  namespace: string
  /** The ACL SETUSER arguments, the user name first: `ACL SETUSER ...args`. */
  args: string[]
  /** The key patterns (with their `~` or `%R~`). */
  keys: string[]
  /** The channel patterns (with their `&`). */
  channels: string[]
  /** The commands allowed (without '+'). */
  commands: string[]
}

/** The default ACL user name of a namespace. */
export function defaultAclUser(namespace: string): string {
  return `nearcache-${namespace}`
}

/** The key patterns a namespace's caches use (its child namespaces included). */
export function aclKeyPatterns(namespace: string, rateLimit = false): string[] {
  const ns = validateNamespace(namespace)
  const patterns = [
    `~${dataKey(ns, '*')}`, // data keys: <ns>:<key>, child namespaces' keys included
    `~${tagKey(ns, '*')}`, // tag epochs of the namespace: __nc|t|<ns>|<tag>
    `~${TAG_EPOCH_PREFIX}${ns}:*`, // tag epochs of child namespaces: __nc|t|<ns>:<child>|<tag>
    `~${lockKey(dataKey(ns, '*'))}`, // stampede locks: __nc|l|<ns>:<key>
    `%R~${pingKey(ns)}`, // health(): read, never written
    `%R~${pingKey(ns)}:*`, // health() of child namespaces
  ]
  if (rateLimit) patterns.push(`~${rateLimitKey(ns, '*')}`, `~${RATE_LIMIT_PREFIX}${ns}:*`) // the distributed rate limiter: __nc|rl|<ns>|<principal>
  return patterns
}

/** The channel patterns: the invalidation channel of the namespace's root (and the legacy one). */
export function aclChannelPatterns(namespace: string, legacyChannel = false): string[] {
  const ns = validateNamespace(namespace)
  return legacyChannel ? [`&${channelFor(ns)}`, `&${LEGACY_CHANNEL}`] : [`&${channelFor(ns)}`]
}

/** The rule; throws E_INVALID_OPTION for a bad namespace or user name. */
export function aclRule(options: AclRuleOptions): AclRule {
  const namespace = validateNamespace(options.namespace)
  const user = options.user ?? defaultAclUser(namespace)
  if (typeof user !== 'string' || !USER_NAME.test(user)) {
    throw new InvalidOptionError(`The ACL user name must be 1 to 128 letters, digits, '_', '.', ':', '@' or '-' (got ${describe(user)}).`)
  }
  const keys = aclKeyPatterns(namespace, options.rateLimit === true)
  const channels = aclChannelPatterns(namespace, options.legacyChannel === true)
  // The distributed rate limiter's script reads the server's clock (TIME) besides GET and SET.
  const commands = [...ACL_COMMANDS.map((c) => c.command), ...(options.rateLimit === true ? ['time'] : [])]
  const start = options.keepPasswords === true ? ['resetkeys', 'resetchannels', 'clearselectors', '-@all'] : ['reset', '-@all']
  return {
    user,
    namespace,
    args: [user, ...start, 'on', ...commands.map((c) => `+${c}`), ...keys, ...channels],
    keys,
    channels,
    commands,
  }
}

/**
 * The pattern that would grant access to one of nearcache's keys or channels,
 * for permission errors: exact for tag epochs, pings and channels (their
 * namespace is delimited), the root namespace's for data keys and locks (a key
 * `a:b:c` may be key `b:c` of `a` or key `c` of `a:b`). Undefined for names
 * that are not nearcache's.
 */
export function grantFor(name: string, kind: 'key' | 'channel'): string | undefined {
  if (kind === 'channel') {
    if (name === LEGACY_CHANNEL || name.startsWith(`${LEGACY_CHANNEL}|`)) return `&${name}`
    return undefined
  }
  if (name.startsWith(TAG_EPOCH_PREFIX)) {
    const ns = name.slice(TAG_EPOCH_PREFIX.length).split('|')[0] as string
    return `~${TAG_EPOCH_PREFIX}${ns}|*`
  }
  if (name.startsWith(PING_PREFIX)) return `%R~${name}`
  if (name.startsWith(RATE_LIMIT_PREFIX)) {
    const ns = name.slice(RATE_LIMIT_PREFIX.length).split('|')[0] as string
    return `~${RATE_LIMIT_PREFIX}${ns}|*`
  }
  const isLock = name.startsWith(LOCK_PREFIX)
  const full = isLock ? name.slice(LOCK_PREFIX.length) : name
  const i = full.indexOf(':')
  if (i <= 0 || full.includes('|')) return undefined
  const root = full.slice(0, i)
  return isLock ? `~${lockKey(dataKey(root, '*'))}` : `~${dataKey(root, '*')}`
}
