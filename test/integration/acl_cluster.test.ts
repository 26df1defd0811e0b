import { randomBytes } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { aclRule } from '../../src/security/acl_rule.js'
import { uniqueNamespace } from '../helpers/backends.js'
import { applyRule, otherNamespace, refusals, removeUser, scanLeaksNames, wholeApi, type AclBackend } from '../helpers/acl_api.js'
import { startCluster, type RedisClusterHandle } from '../helpers/redis_servers.js'

/**
 * The same rule on a real 3-master Cluster of this file's own, applied on every
 * node: the whole API works as the user on its namespace (through ioredis'
 * Cluster client: CLUSTER SLOTS, CLUSTER INFO), and another namespace is refused.
 */
describe('nearcache acl on a Redis Cluster', () => {
  let cluster: RedisClusterHandle
  let backend: AclBackend
  const cleanup: (() => Promise<unknown>)[] = []
  const users: string[] = []

  beforeAll(async () => {
    cluster = await startCluster({ masters: 3 })
    const nodes = cluster.nodes.map((n) => new Redis(n.port, n.host))
    backend = {
      redis: (username, password) => ({ cluster: cluster.nodes, redisOptions: { username, password } }),
      nodes,
      admin: new Cluster(cluster.nodes),
    }
  })
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f()
  })
  afterAll(async () => {
    if (backend) {
      for (const u of users) await removeUser(backend, u)
      for (const n of backend.nodes) n.disconnect()
      backend.admin.disconnect()
    }
    await cluster?.stop()
  })

  async function userFor(ns: string): Promise<{ user: string; password: string }> {
    const rule = aclRule({ namespace: ns })
    const password = randomBytes(16).toString('hex')
    await applyRule(backend, rule.args, password)
    users.push(rule.user)
    return { user: rule.user, password }
  }

  it('the rule, applied on every node, runs the whole API on its namespace, and nothing is refused', async () => {
    const ns = uniqueNamespace('acl')
    const { user, password } = await userFor(ns)
    await wholeApi(backend, ns, user, password, cleanup)
  })

  it("another namespace's keys and channel are refused on every node, with the key or channel named", async () => {
    const ns = uniqueNamespace('acl')
    const { user, password } = await userFor(ns)
    await otherNamespace(backend, uniqueNamespace('aclother'), user, password, cleanup)
  })

  it('SCAN on each master shows the user the key names of every namespace, but not their values', async () => {
    const ns = uniqueNamespace('acl')
    const { user, password } = await userFor(ns)
    const asUser = cluster.masters.map((m) => new Redis({ host: m.host, port: m.port, username: user, password }))
    cleanup.push(async () => asUser.forEach((c) => c.disconnect()))
    await scanLeaksNames(backend, asUser, uniqueNamespace('aclother'))
  })

  it('a node without the user refuses the login: the rule must be on every node', async () => {
    const ns = uniqueNamespace('acl')
    const { user, password } = await userFor(ns)
    const missing = backend.nodes[0] as Redis
    await missing.call('ACL', 'DELUSER', user)
    const asUser = new Redis({ host: '127.0.0.1', port: cluster.nodes[0]!.port, username: user, password, lazyConnect: true, retryStrategy: () => null })
    cleanup.push(async () => asUser.disconnect())
    const err = await new Promise<Error>((resolve) => {
      asUser.once('error', resolve)
      asUser.connect().catch(() => {})
    })
    expect(err.message).toMatch(/WRONGPASS/)
    expect(err.message).not.toContain(password)
    // The node logs the failed login under the user's name; the nodes that have the rule log nothing.
    expect(await refusals(backend, user)).toEqual(['auth auth auth'])
  })
})
