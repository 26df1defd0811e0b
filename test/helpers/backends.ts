import { randomUUID } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import { inject } from 'vitest'
import { createCache } from '../../src/index.js'
import type { CacheOptions, NearCache } from '../../src/index.js'

export type BackendName = 'standalone' | 'cluster' | 'memory'

export interface Backend {
  name: BackendName
  /** The `redis` option a user would pass for this backend. */
  redisOption(): CacheOptions['redis']
  /** A raw ioredis client on the same server(s), for looking behind the cache's back. */
  rawClient(): Redis | Cluster | undefined
}

export const standalone: Backend = {
  name: 'standalone',
  redisOption: () => inject('redisUrl'),
  rawClient: () => new Redis(inject('redisUrl')),
}

export const cluster: Backend = {
  name: 'cluster',
  redisOption: () => ({ cluster: inject('clusterNodes') }),
  rawClient: () => new Cluster(inject('clusterNodes')),
}

export const memory: Backend = {
  name: 'memory',
  redisOption: () => false,
  rawClient: () => undefined,
}

export const redisBackends = [standalone, cluster]
export const allBackends = [standalone, cluster, memory]

/** A unique namespace per test, so tests sharing one server never see each other. */
export function uniqueNamespace(label = 't'): string {
  return `${label}-${randomUUID().slice(0, 8)}`
}

/** Builds a cache the way a user would, on a fresh namespace. */
export function cacheOn(b: Backend, options: CacheOptions = {}): Promise<NearCache> {
  return createCache({ redis: b.redisOption(), namespace: uniqueNamespace(b.name), ...options })
}
