import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { uniqueNamespace } from '../helpers/backends.js'
import { applyRule, otherNamespace, removeUser, scanLeaksNames, wholeApi, type AclBackend } from '../helpers/acl_api.js'
import { nearcache, show } from '../helpers/cli_runner.js'
import { startStandalone, type RedisServerHandle } from '../helpers/redis_servers.js'

/**
 * `nearcache acl`'s rule applied to a real standalone server, with a password:
 * the whole API works as that user on its namespace; on another namespace every
 * operation fails with E_L2_ERROR naming the key or channel (never the password).
 */
describe('nearcache acl on a standalone server', () => {
  let server: RedisServerHandle
  let backend: AclBackend
  const cleanup: (() => Promise<unknown>)[] = []
  const users: string[] = []

  beforeAll(async () => {
    server = await startStandalone()
    const admin = new Redis(server.port, '127.0.0.1')
    backend = {
      redis: (username, password) => ({ host: '127.0.0.1', port: server.port, username, password }),
      nodes: [admin],
      admin,
    }
  })
  afterEach(async () => {
    for (const f of cleanup.splice(0).reverse()) await f()
  })
  afterAll(async () => {
    for (const u of users) await removeUser(backend, u)
    backend.admin.disconnect()
    await server.stop()
  })

  /** The CLI's --json rule for `ns`, applied with a fresh password. */
  async function userFor(ns: string): Promise<{ user: string; password: string }> {
    const r = await nearcache(['acl', '--namespace', ns, '--json'])
    expect(r.code, show(r)).toBe(0)
    const args = JSON.parse(r.stdout) as string[]
    const password = randomBytes(16).toString('hex')
    expect(r.stdout + r.stderr).not.toMatch(/[>#][0-9a-f]/)
    await applyRule(backend, args, password)
    users.push(args[0] as string)
    return { user: args[0] as string, password }
  }

  it('the rule printed by the CLI runs the whole API on its namespace, and nothing is refused', async () => {
    const ns = uniqueNamespace('acl')
    const { user, password } = await userFor(ns)
    await wholeApi(backend, ns, user, password, cleanup)
  })

  it("another namespace's keys and channel are refused, with the key or channel named", async () => {
    const ns = uniqueNamespace('acl')
    const { user, password } = await userFor(ns)
    await otherNamespace(backend, uniqueNamespace('aclother'), user, password, cleanup)
    // A child namespace of another root is refused the same way (its root's channel).
    await otherNamespace(backend, `${uniqueNamespace('aclother')}:child`, user, password, cleanup)
  })

  it('SCAN shows the restricted user the key names of every namespace, but not their values', async () => {
    const ns = uniqueNamespace('acl')
    const { user, password } = await userFor(ns)
    const asUser = new Redis({ host: '127.0.0.1', port: server.port, username: user, password })
    cleanup.push(async () => asUser.disconnect())
    await scanLeaksNames(backend, [asUser], uniqueNamespace('aclother'))
  })

  it('the text output is the same rule, with the password advice on stderr', async () => {
    const [text, json] = await Promise.all([nearcache(['acl', '--namespace', 'shop:eu', '--user', 'svc']), nearcache(['acl', '--namespace', 'shop:eu', '--json', '--user', 'svc'])])
    expect(text.code, show(text)).toBe(0)
    expect(text.stdout).toBe(`ACL SETUSER ${(JSON.parse(json.stdout) as string[]).join(' ')}\n`)
    expect(text.stderr).toContain("'>PASSWORD'")
    const bad = await nearcache(['acl', '--namespace', 'sh*p'])
    expect(bad.code, show(bad)).toBe(2)
    expect(bad.stdout).toBe('')
    const none = await nearcache(['acl'])
    expect(none.code, show(none)).toBe(2)
  })
})
