import { InvalidOptionError } from '../errors.js'
import { describe } from '../util/units.js'
import { CROSS_CHECKS, OPTIONS } from './declarations.js'
import { isRecord, resolveGroup } from './declare.js'
import type { CacheOptions, L1Options, ResolvedOptions } from './types.js'

// createCache's options: the types (types.ts), the declarations (declarations.ts)
// and the walk over them (here). Other modules import from this file.

export type { ByteSize, CacheOptions, Clock, ClusterConnection, Duration, L1Options, RedisOption, ResolvedOptions } from './types.js'
export { MAX_L1_BYTES, MAX_VALUE_BYTES } from './declarations.js'
export { MAX_NAMESPACE_CHARS, validateNamespace } from './namespace.js'

// Every option a user can pass has a declaration, and nothing else does (OPTIONS
// declares each ResolvedOptions field): a compile error otherwise.
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false
type Assert<T extends true> = T
export type OptionsDeclared = [Assert<SameKeys<CacheOptions, ResolvedOptions>>, Assert<SameKeys<L1Options, Exclude<ResolvedOptions['l1'], false>>>]

/** createCache's options, checked and with every default applied; throws InvalidOptionError naming the first bad one. */
export function resolveOptions(input: CacheOptions | undefined): ResolvedOptions {
  const given: unknown = input ?? {}
  if (!isRecord(given)) throw new InvalidOptionError(`createCache() takes an options object (got ${describe(given)}).`)
  const resolved = resolveGroup(OPTIONS, given, '')
  for (const check of CROSS_CHECKS) {
    const problem = check(resolved)
    if (problem !== undefined) throw new InvalidOptionError(problem)
  }
  return resolved
}
