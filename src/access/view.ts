import { ForbiddenError, InvalidOptionError } from '../errors.js'
import { validateKey, validateKeys } from '../keys.js'
import type { GetOrSetOptions, NearCache, SetManyEntry, SetOptions } from '../cache/facade.js'
import { describe } from '../util/units.js'
import type { AccessState, CompiledPrincipal } from './access_state.js'
import { audited, unaudited } from './audit_calls.js'
import type { Permission } from './principals.js'

type Proto = Pick<NearCache, 'get' | 'has' | 'getMany' | 'set' | 'setMany' | 'delete' | 'deleteMany' | 'getOrSet' | 'compareAndSet' | 'invalidateTags' | 'invalidatePrefix' | 'clear'>

/**
 * What `cache.as(name)` returns: the cache's data calls, on behalf of principal
 * `name`. Each call is checked before anything is read or written, in order:
 * the operation against `can`, every key against `keys` (a batch passes only when
 * every key does), then the rate limit (one token per key; a call refused for
 * lack of permission spends none). Then the cache's own call runs. Every call is
 * audited with the principal's name when `audit` is set.
 */
export class AccessView {
  readonly #cache: NearCache
  readonly #proto: Proto
  readonly #p: CompiledPrincipal
  readonly #a: AccessState
  readonly #maxKeyBytes: number

  /** @internal use cache.as(name) */
  constructor(cache: NearCache, principal: CompiledPrincipal, access: AccessState, maxKeyBytes: number) {
    this.#cache = cache
    // The prototype's methods: a plain-cache audit wrapper (own properties) would record these calls a second time.
    this.#proto = Object.getPrototypeOf(cache) as Proto
    this.#p = principal
    this.#a = access
    this.#maxKeyBytes = maxKeyBytes
  }

  /** The principal this view acts for. */
  get principal(): string {
    return this.#p.name
  }

  /** The namespace of the cache the view was made from (its keys and patterns are relative to it). */
  get prefix(): string {
    return this.#cache.prefix
  }

  get<V = unknown>(key: string): Promise<V | undefined> {
    return this.#run('get', [key], ['read'], () => [validateKey(key, this.#maxKeyBytes)], () => this.#proto.get.call(this.#cache, key) as Promise<V | undefined>)
  }

  has(key: string): Promise<boolean> {
    return this.#run('has', [key], ['read'], () => [validateKey(key, this.#maxKeyBytes)], () => this.#proto.has.call(this.#cache, key))
  }

  getMany<V = unknown>(keys: string[]): Promise<(V | undefined)[]> {
    return this.#run('getMany', [keys], ['read'], () => validateKeys(keys, this.#maxKeyBytes), () => this.#proto.getMany.call(this.#cache, keys) as Promise<(V | undefined)[]>)
  }

  /** `nx`/`xx` need read as well as write: their answer tells whether the key exists. */
  set(key: string, value: unknown, options?: SetOptions): Promise<boolean> {
    const conditional = typeof options === 'object' && options !== null && (options.nx === true || options.xx === true)
    const needs: Permission[] = conditional ? ['read', 'write'] : ['write']
    return this.#run('set', [key], needs, () => [validateKey(key, this.#maxKeyBytes)], () => this.#proto.set.call(this.#cache, key, value, options))
  }

  setMany(entries: SetManyEntry[]): Promise<void> {
    const keys = () => {
      if (!Array.isArray(entries)) throw new InvalidOptionError(`setMany takes an array of { key, value, ttl?, tags? } (got ${describe(entries)}).`)
      return entries.map((e) => {
        if (typeof e !== 'object' || e === null) throw new InvalidOptionError(`Each setMany entry must be an object { key, value, ttl?, tags? } (got ${describe(e)}).`)
        return validateKey(e.key, this.#maxKeyBytes)
      })
    }
    return this.#run('setMany', [entries], ['write'], keys, () => this.#proto.setMany.call(this.#cache, entries))
  }

  delete(key: string): Promise<boolean> {
    return this.#run('delete', [key], ['delete'], () => [validateKey(key, this.#maxKeyBytes)], () => this.#proto.delete.call(this.#cache, key))
  }

  deleteMany(keys: string[]): Promise<number> {
    return this.#run('deleteMany', [keys], ['delete'], () => [...new Set(validateKeys(keys, this.#maxKeyBytes))], () => this.#proto.deleteMany.call(this.#cache, keys))
  }

  getOrSet<V>(key: string, loader: () => V | Promise<V>, options?: GetOrSetOptions): Promise<V> {
    return this.#run('getOrSet', [key], ['read', 'write'], () => [validateKey(key, this.#maxKeyBytes)], () => this.#proto.getOrSet.call(this.#cache, key, loader, options) as Promise<V>)
  }

  compareAndSet(key: string, expected: unknown, next: unknown, options?: { ttl?: number | string }): Promise<boolean> {
    return this.#run('compareAndSet', [key], ['read', 'write'], () => [validateKey(key, this.#maxKeyBytes)], () => this.#proto.compareAndSet.call(this.#cache, key, expected, next, options))
  }

  /** Needs admin. Tags are not keys: the key patterns do not apply. */
  invalidateTags(tags: string[]): Promise<void> {
    return this.#run('invalidateTags', [tags], ['admin'], () => null, () => this.#proto.invalidateTags.call(this.#cache, tags))
  }

  /** Needs admin, and a pattern ending in `*` that every key starting with `prefix` matches. */
  invalidatePrefix(prefix: string): Promise<number> {
    const check = () => {
      if (typeof prefix !== 'string') return null // the cache's own validation refuses it
      if (!this.#p.scope.allowsPrefix(prefix)) throw this.#forbidden('invalidatePrefix', `prefix ${describe(prefix)}: not every key under it matches its key patterns`, prefix)
      return null
    }
    return this.#run('invalidatePrefix', [prefix], ['admin'], check, () => this.#proto.invalidatePrefix.call(this.#cache, prefix))
  }

  /** Needs admin and the pattern `*` (clear removes every key of the namespace, and of its child namespaces). */
  clear(): Promise<void> {
    const check = () => {
      if (!this.#p.scope.all) throw this.#forbidden('clear', "the namespace: clear needs the key pattern '*'")
      return null
    }
    return this.#run('clear', [], ['admin'], check, () => this.#proto.clear.call(this.#cache))
  }

  #forbidden(op: string, what: string, key?: string): ForbiddenError {
    return new ForbiddenError(`Principal '${this.#p.name}' may not ${op} ${what}.`, this.#p.name, op, key)
  }

  /**
   * The checks, then the call. `keys` validates and lists the keys the call
   * touches (null: none, or checked by the caller); their count is the cost.
   */
  #run<T>(op: string, args: unknown[], needs: Permission[], keys: () => string[] | null, call: () => Promise<T>): Promise<T> {
    const body = async (): Promise<T> => {
      const ks = keys()
      for (const need of needs) {
        if (this.#p.can.has(need)) continue
        const first = ks?.[0]
        const on = first === undefined ? '' : `${ks && ks.length > 1 ? 'a batch with key' : 'key'} ${describe(first)} `
        throw this.#forbidden(op, `${on}(${op} needs '${needs.join("' and '")}'; it can ${this.#p.can.size === 0 ? 'do nothing' : [...this.#p.can].join(', ')})`, first)
      }
      if (ks !== null) {
        const bad = this.#p.scope.firstDenied(ks)
        if (bad !== undefined) throw this.#forbidden(op, `key ${describe(bad)}: it matches none of its key patterns`, bad)
      }
      // A local bucket answers synchronously: no extra await on the common path.
      const spent = this.#a.spend(this.#p, ks === null ? 1 : ks.length)
      if (spent) await spent
      return unaudited(call)
    }
    const trail = this.#a.trail
    return trail ? audited(trail, this.#p.name, op, this.#cache.prefix, args, body) : body()
  }
}
