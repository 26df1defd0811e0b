import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { createCache } from '../../src/index.js'
import type { NearCache } from '../../src/index.js'
import { cluster, standalone, uniqueNamespace } from '../helpers/backends.js'
import type { Backend } from '../helpers/backends.js'
import { getFreePort } from '../helpers/free_port.js'

/**
 * The `nearcache` operator command, run the way a user runs it: a child process
 * (`node --import tsx src/cli/main.ts ...` from the repo), checked by its stdout,
 * stderr and exit code, against the harness's real standalone Redis and Cluster.
 * What the commands did is checked through the library (and a raw client).
 */

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const MAIN = join(REPO, 'src', 'cli', 'main.ts')
const WARM_FIXTURE = join(REPO, 'test', 'fixtures', 'cli_warm.jsonl')
const TIMEOUT = 120_000
const COMMANDS = ['status', 'invalidate', 'warm', 'backup', 'restore', 'stats', 'events', 'bench', 'dead-letter', 'rekey', 'acl']

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

/** The environment a user's shell would give: no vitest/npm variables, no NEARCACHE_REDIS_URL. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'NODE_OPTIONS' || k.startsWith('VITEST') || k === 'NEARCACHE_REDIS_URL') continue
    env[k] = v
  }
  return { ...env, ...extra }
}

/** Runs a program; stdin gets `input` (or nothing, closed at once). */
function runProcess(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Result> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: REPO, env: opts.env ?? cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${cmd} ${args.join(' ')} timed out.\nstdout:\n${stdout}\nstderr:\n${stderr}`))
    }, opts.timeout ?? 60_000)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolvePromise({ code, stdout, stderr })
    })
    child.stdin.on('error', () => {
      /* the command may exit before reading everything */
    })
    child.stdin.end(opts.input ?? '')
  })
}

/** `nearcache ...args`. */
function nearcache(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return runProcess(process.execPath, ['--import', 'tsx', MAIN, ...args], opts)
}

/** Shows what the command printed when an expectation fails. */
function show(r: Result): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`
}

/** Retries an assertion until it passes or `ms` have passed. */
async function eventually(check: () => Promise<void>, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      await check()
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

function targetArgs(b: Backend): string[] {
  return b.name === 'cluster'
    ? ['--cluster', inject('clusterNodes').map((n) => `${n.host}:${n.port}`).join(',')]
    : ['--redis', inject('redisUrl')]
}

function masters(raw: Redis | Cluster): Redis[] {
  return (raw as Cluster).isCluster ? (raw as Cluster).nodes('master') : [raw as Redis]
}

/** Every Redis key of a namespace (entries and tag epochs), from every master. */
async function namespaceKeys(raw: Redis | Cluster, ns: string): Promise<string[]> {
  const out = new Set<string>()
  for (const node of masters(raw)) {
    for (const match of [`${ns}:*`, `__nc|t|${ns}|*`, `__nc|t|${ns}:*`]) {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000)
        cursor = next
        keys.forEach((k) => out.add(k))
      } while (cursor !== '0')
    }
  }
  return [...out].sort()
}

describe('nearcache CLI: help and usage errors', { timeout: TIMEOUT, concurrent: true }, () => {
  it('--help lists exactly the commands that exist, and exits 0', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = await nearcache(args)
      expect(r.code, show(r)).toBe(0)
      expect(r.stdout).toMatch(/^Usage: nearcache <command>/)
      const listed = [...r.stdout.split('Commands:\n')[1]!.split('\n\n')[0]!.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1])
      expect(listed).toEqual(COMMANDS)
      for (const opt of ['--redis', '--cluster', '--namespace', '--json', '--version']) expect(r.stdout).toContain(opt)
    }
  })

  // One test per command: each starts the CLI, and on a busy machine a start can take seconds.
  it.each(COMMANDS)('%s --help prints its usage and wins over other arguments', async (c) => {
    const r = await nearcache([c, '--help', '--no-such-flag'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`^Usage: nearcache ${c}`))
    expect(r.stdout).toContain('--namespace')
    expect(r.stderr).toBe('')
  })

  it('-h before the command is its help', async () => {
    const r = await nearcache(['-h', 'warm'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toContain('--concurrency')
  })

  it('--version prints the package version', async () => {
    const { version } = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { version: string }
    const r = await nearcache(['--version'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout.trim()).toBe(version)
  })

  it.each([
    [[], /^Usage: nearcache <command>/m],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['status', '--frobnicate'], /unknown option --frobnicate/],
    [['--frobnicate'], /unknown option --frobnicate/],
    [['status', 'extra'], /unexpected argument 'extra'/],
    [['invalidate'], /say what to invalidate/],
    [['invalidate', '--tag'], /--tag needs a value/],
    [['invalidate', '--prefix='], /--prefix takes a non-empty value/],
    [['warm'], /warm needs --from FILE/],
    [['warm', '--from', WARM_FIXTURE, '--concurrency', '0'], /--concurrency takes a whole number/],
    [['warm', '--from', WARM_FIXTURE, '--ttl', 'soon'], /--ttl takes milliseconds or a duration/],
    [['status', '--redis', 'localhost:6379'], /--redis takes a redis:\/\/ or rediss:\/\/ URL/],
    [['status', '--cluster', 'nohostport'], /--cluster takes host:port/],
    [['status', '--redis', 'redis://127.0.0.1:1', '--cluster', '127.0.0.1:2'], /either --redis or --cluster/],
    [['status', '--namespace', 'a|b'], /--namespace must be/],
    [['status', '--scan-limit', 'many'], /--scan-limit takes a whole number/],
  ])('usage error %j: exit 2, a short message and a usage line on stderr', async (args, message) => {
    const r = await nearcache(args)
    expect(r.code, show(r)).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(message)
    expect(r.stderr).toMatch(/usage: nearcache|Usage: nearcache/)
    expect(r.stderr).not.toMatch(/^\s+at /m)
  })

  it('an unreachable Redis or Cluster: exit 1 and one line naming the address, no stack trace', async () => {
    const port = await getFreePort()
    const url = `redis://127.0.0.1:${port}`
    const cases: string[][] = [
      ['status', '--redis', url],
      ['invalidate', '--redis', url, '--tag', 't'],
      ['warm', '--redis', url, '--from', WARM_FIXTURE],
      ['backup', '--redis', url],
      ['status', '--cluster', `127.0.0.1:${port}`],
    ]
    for (const args of cases) {
      const r = await nearcache(args)
      expect(r.code, show(r)).toBe(1)
      expect(r.stdout).toBe('')
      const lines = r.stderr.trimEnd().split('\n')
      expect(lines, show(r)).toHaveLength(1)
      expect(lines[0]).toMatch(/^nearcache: cannot reach (Redis|the Redis Cluster) at /)
      expect(lines[0]).toContain(args.includes('--cluster') ? `127.0.0.1:${port}` : url)
      expect(lines[0]).toMatch(/ECONNREFUSED/)
    }
    // The default comes from NEARCACHE_REDIS_URL.
    const r = await nearcache(['status'], { env: cleanEnv({ NEARCACHE_REDIS_URL: url }) })
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr.trim()).toMatch(new RegExp(`^nearcache: cannot reach Redis at ${url.replace(/[.]/g, '\\.')} `))
  })

  it('a missing input file is an operation failure (exit 1), not a stack trace', async () => {
    const r = await nearcache(['warm', '--redis', 'redis://127.0.0.1:1', '--from', join(REPO, 'test', 'fixtures', 'cli_nope.jsonl')])
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr.trim()).toMatch(/^nearcache: cannot read .*cli_nope\.jsonl: ENOENT/)
  })
})

describe.each([standalone, cluster])('nearcache CLI against $name', { timeout: TIMEOUT }, (b) => {
  let raw: Redis | Cluster
  const caches: NearCache[] = []
  const namespaces: string[] = []

  /** A library cache on a fresh namespace (no L1: the CLI changes Redis behind its back). */
  async function open(ns = uniqueNamespace(`cli-${b.name}`)): Promise<NearCache> {
    const c = await createCache({ redis: b.redisOption(), namespace: ns, l1: false })
    caches.push(c)
    namespaces.push(ns)
    return c
  }

  /** A cache with an L1, like a running server's: it learns of the CLI's changes only through announcements. */
  async function server(ns: string): Promise<NearCache> {
    const c = await createCache({ redis: b.redisOption(), namespace: ns })
    caches.push(c)
    return c
  }

  function run(args: string[], input?: string): Promise<Result> {
    return nearcache([...args, ...targetArgs(b)], input === undefined ? {} : { input })
  }

  beforeAll(() => {
    raw = b.rawClient() as Redis | Cluster
  })

  afterAll(async () => {
    for (const c of caches) await c.clear().catch(() => {})
    await Promise.allSettled(caches.map((c) => c.close()))
    raw.disconnect()
  })

  it('status: connection, topology, memory and namespaces, as text and as --json', async () => {
    const cache = await open()
    const ns = cache.prefix
    await cache.set('a', 1)
    await cache.set('b', 2, { tags: ['t'] })
    await cache.namespace('child').set('c', 3)

    // --namespace: listed even if other tests' namespaces outnumber it.
    const text = await run(['status', '--scan-limit', '100000000', '--namespace', ns])
    expect(text.code, show(text)).toBe(0)
    expect(text.stdout).toMatch(/^Ping +\d+\.\d+ ms/m)
    expect(text.stdout).toMatch(/^Memory|^Masters/m)
    expect(text.stdout).toMatch(/maxmemory|MAXMEMORY/)
    expect(text.stdout).toMatch(new RegExp(`^ +${ns} +3 +1$`, 'm'))
    expect(text.stdout).toContain('scanned all')
    if (b.name === 'cluster') {
      expect(text.stdout).toMatch(/Redis Cluster, state ok, 16384\/16384 slots, 3 masters/)
      expect(text.stdout).toMatch(/0-5460/)
    } else {
      expect(text.stdout).toMatch(/standalone, Redis \d+\.\d+/)
    }

    const json = await run(['status', '--json', '--scan-limit', '100000000'])
    expect(json.code, show(json)).toBe(0)
    const report = JSON.parse(json.stdout)
    expect(report.mode).toBe(b.name)
    expect(report.version).toMatch(/^\d+\.\d+/)
    expect(report.pingMs).toBeGreaterThan(0)
    expect(report.namespaces.complete).toBe(true)
    expect(report.namespaces.items).toContainEqual({ namespace: ns, keys: 3, tagEpochs: 1 })
    for (const n of report.nodes) {
      expect(n.addr).toMatch(/^[\d.]+:\d+$/)
      expect(n.memory.used).toBeGreaterThan(0)
      expect(typeof n.memory.usedHuman).toBe('string')
      expect(typeof n.memory.max).toBe('number')
      expect(Number.isInteger(n.keys)).toBe(true)
    }
    // The namespace's 3 keys and its tag epoch are on the nodes reported.
    expect(report.nodes.reduce((sum: number, n: { keys: number }) => sum + n.keys, 0)).toBeGreaterThanOrEqual(4)
    if (b.name === 'cluster') {
      expect(report.cluster.state).toBe('ok')
      expect(report.nodes).toHaveLength(3)
      const slots = report.nodes.flatMap((n: { slots: [number, number][] }) => n.slots).sort((x: number[], y: number[]) => x[0]! - y[0]!)
      expect(slots.reduce((sum: number, [a, z]: number[]) => sum + (z! - a! + 1), 0)).toBe(16384)
      expect(slots[0][0]).toBe(0)
    } else {
      expect(report.nodes).toHaveLength(1)
      expect(report.nodes[0].role).toBe('master')
    }

    // The scan cap is said out loud.
    const capped = await run(['status', '--scan-limit', '1'])
    expect(capped.code, show(capped)).toBe(0)
    expect(capped.stdout).toMatch(/scan stopped after 1 keys.*counts are partial/)
    const cappedJson = JSON.parse((await run(['status', '--json', '--scan-limit', '1'])).stdout)
    expect(cappedJson.namespaces).toMatchObject({ complete: false, limit: 1, scannedKeys: 1 })
  })

  it('invalidate --tag: tagged entries read as missing, others stay', async () => {
    const cache = await open()
    await cache.set('p1', 'one', { tags: ['products'] })
    await cache.set('p2', 'two', { tags: ['products', 'sale'] })
    await cache.set('u1', 'user', { tags: ['users'] })
    await cache.set('plain', 'x')
    const running = await server(cache.prefix)
    expect(await running.get('p1')).toBe('one') // now in its L1, with the tag's epoch
    expect(await running.get('p1')).toBe('one')
    const r = await run(['invalidate', '--namespace', cache.prefix, '--tag', 'products', '--tag', 'nothing-has-this'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toContain(`namespace '${cache.prefix}'`)
    expect(r.stdout).toContain('invalidated 2 tags ("products", "nothing-has-this")')
    expect(await cache.getMany(['p1', 'p2', 'u1', 'plain'])).toEqual([undefined, undefined, 'user', 'x'])
    // A running process drops its L1 copies at once (well before its l1.ttl of 10 s).
    await eventually(async () => expect(await running.get('p1')).toBeUndefined(), 3000)
    // New writes with the tag work again.
    await cache.set('p1', 'again', { tags: ['products'] })
    expect(await cache.get('p1')).toBe('again')
  })

  it('invalidate --prefix: removes the namespace keys with that prefix, on every master', async () => {
    const cache = await open()
    const other = await open()
    for (let i = 0; i < 30; i++) await cache.set(`user:${i}`, i)
    await cache.set('users-list', 'keep')
    await cache.set('product:1', 'keep')
    await other.set('user:1', 'other namespace')
    const r = await run(['invalidate', '--namespace', cache.prefix, '--prefix', 'user:'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toContain('prefix "user:": removed 30 keys')
    expect(await cache.get('user:0')).toBeUndefined()
    expect(await cache.get('user:29')).toBeUndefined()
    expect(await cache.get('users-list')).toBe('keep')
    expect(await cache.get('product:1')).toBe('keep')
    expect(await other.get('user:1')).toBe('other namespace')
  })

  it('invalidate --key (repeated, combined, --json): deletes those keys and counts the live ones', async () => {
    const cache = await open()
    await cache.set('a', 1)
    await cache.set('b', 2)
    await cache.set('c', 3)
    await cache.set('tmp:1', 1)
    await cache.set('t', 1, { tags: ['x'] })
    const r = await run([
      'invalidate', '--namespace', cache.prefix, '--json',
      '--key', 'a', '--key', 'b', '--key', 'missing', '--prefix', 'tmp:', '--tag', 'x',
    ])
    expect(r.code, show(r)).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      namespace: cache.prefix,
      keys: { requested: 3, deleted: 2 },
      prefixes: [{ prefix: 'tmp:', removed: 1 }],
      tags: ['x'],
    })
    expect(await cache.getMany(['a', 'b', 'c', 'tmp:1', 't'])).toEqual([undefined, undefined, 3, undefined, undefined])

    const text = await run(['invalidate', '--namespace', cache.prefix, '--key', 'c', '--key', 'gone'])
    expect(text.code, show(text)).toBe(0)
    expect(text.stdout).toContain('keys: deleted 1 of 2 (1 missing, expired or already invalidated)')
    expect(await cache.get('c')).toBeUndefined()
  })

  it('warm --from a fixture: valid lines load (values, TTLs, tags), invalid lines are reported by number, exit 1', async () => {
    const cache = await open()
    const r = await run(['warm', '--namespace', cache.prefix, '--from', WARM_FIXTURE, '--ttl', '5m', '--concurrency', '3'])
    expect(r.code, show(r)).toBe(1)
    expect(r.stdout).toMatch(/^warm: loaded 6 entries of 9 lines into namespace '.*'.*; 3 invalid lines, 0 failed$/m)
    expect(r.stderr).toMatch(/^warm: line 6: not valid JSON/m)
    expect(r.stderr).toMatch(/^warm: line 8: missing "value"/m)
    expect(r.stderr).toMatch(/^warm: line 9: "ttl" must be/m)
    expect(r.stderr).not.toMatch(/^\s+at /m)

    expect(await cache.get('product:1')).toEqual({ id: 1, name: 'Lamp', price: 19.5, tags: ['home'] })
    expect(await cache.get('product:2')).toEqual({ id: 2, name: 'Desk', price: 129 })
    expect(await cache.get('user:1')).toBe('Ada')
    expect(await cache.get('config')).toEqual([1, 2, 3, null, true])
    expect(await cache.get('counter')).toBe(0)
    expect(await cache.get('flag')).toBe(false)
    expect(await cache.get('broken')).toBeUndefined()
    expect(await cache.get('no-value')).toBeUndefined()
    expect(await cache.get('bad-ttl')).toBeUndefined()

    // TTLs: the line's own, else --ttl.
    const pttl = (k: string) => raw.pttl(`${cache.prefix}:${k}`)
    expect(await pttl('product:2')).toBeGreaterThan(600_000 - 30_000)
    expect(await pttl('product:2')).toBeLessThanOrEqual(600_000)
    expect(await pttl('user:1')).toBeGreaterThan(30_000)
    expect(await pttl('user:1')).toBeLessThanOrEqual(60_000)
    expect(await pttl('config')).toBeGreaterThan(300_000 - 30_000)
    expect(await pttl('config')).toBeLessThanOrEqual(300_000)

    // Tags: the library's invalidation reaches what warm wrote.
    await cache.invalidateTags(['home'])
    expect(await cache.get('product:1')).toBeUndefined()
    expect(await cache.get('product:2')).toEqual({ id: 2, name: 'Desk', price: 129 })
    await cache.invalidateTags(['products'])
    expect(await cache.get('product:2')).toBeUndefined()
  })

  it('warm from stdin (--from -), many lines, --json: all load, exit 0', async () => {
    const cache = await open()
    const n = 400
    const input = Array.from({ length: n }, (_, i) => JSON.stringify({ key: `item:${i}`, value: { i, name: `n${i}` }, tags: [`g${i % 4}`] })).join('\n')
    const r = await run(['warm', '--namespace', cache.prefix, '--from', '-', '--json', '--concurrency', '32'], input)
    expect(r.code, show(r)).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ namespace: cache.prefix, source: 'stdin', lines: n, loaded: n, invalid: 0, failed: 0, errors: [] })
    const values = await cache.getMany(Array.from({ length: n }, (_, i) => `item:${i}`))
    expect(values).toEqual(Array.from({ length: n }, (_, i) => ({ i, name: `n${i}` })))
    expect(await raw.pttl(`${cache.prefix}:item:0`)).toBe(-1)
  })

  it('backup → clear → restore brings the namespace back exactly: values, types, tags, TTLs', async () => {
    const cache = await open()
    const ns = cache.prefix
    const neighbour = await open(`${ns}-x`) // shares the text prefix, not the namespace
    await neighbour.set('k', 'not in the backup')

    const rich = {
      when: new Date(Date.UTC(2024, 1, 29, 12, 30)),
      map: new Map<string, unknown>([['a', 1n], ['b', new Date(0)]]),
      big: 2n ** 80n + 1n,
      neg: -(2n ** 64n),
      set: new Set(['x', 'y']),
      bytes: Buffer.from([0, 1, 2, 255]),
      nested: { list: [1, 'two', null, { three: 3 }] },
    }
    await cache.set('rich', rich, { ttl: '1h', tags: ['t1', 'shared'] })
    await cache.set('forever', 'no ttl', { tags: ['shared'] })
    await cache.set('invalidated', 'stale', { tags: ['t2'] })
    await cache.invalidateTags(['t2'])
    await cache.set('big-value', 'x'.repeat(50_000), { ttl: 90_000 }) // compressed envelope
    await cache.namespace('child').set('c', new Set([1, 2, 3]), { ttl: '30m', tags: ['ct'] })
    for (let i = 0; i < 60; i++) await cache.set(`k:${i}`, i, { ttl: 120_000 + i * 1000 })

    const keysBefore = await namespaceKeys(raw, ns)
    expect(keysBefore.length).toBe(65 + 4) // 65 entries, epochs of t1, shared, t2 and child's ct
    // TTLs are compared against the wall time that passed between two readings, so
    // a slow machine cannot make this flaky: a TTL may only shrink by that much.
    const t0 = Date.now()
    const pttlBefore = new Map(await Promise.all(keysBefore.map(async (k) => [k, await raw.pttl(k)] as const)))

    const backup = await run(['backup', '--namespace', ns])
    const backupElapsed = Date.now() - t0
    expect(backup.code, show(backup)).toBe(0)
    const lines = backup.stdout.trimEnd().split('\n').map((l) => JSON.parse(l))
    expect(lines[0]).toEqual({ nearcache_backup: 1, namespace: ns, created: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) })
    expect(Date.now() - Date.parse(lines[0].created)).toBeLessThan(60_000)
    const body = lines.slice(1) as { k: string; v: string; pttl: number }[]
    expect(body.map((l) => l.k).sort()).toEqual(keysBefore)
    for (const l of body) {
      expect(Object.keys(l).sort()).toEqual(['k', 'pttl', 'v'])
      expect(Buffer.from(l.v, 'base64').length).toBeGreaterThan(0)
      const before = pttlBefore.get(l.k) as number
      if (before === -1) expect(l.pttl, l.k).toBe(-1)
      else {
        expect(l.pttl, l.k).toBeLessThanOrEqual(before)
        expect(before - l.pttl, `${l.k}: PTTL ${before} before, ${l.pttl} in the backup`).toBeLessThanOrEqual(backupElapsed + 50)
      }
    }
    const inBackup = new Map(body.map((l) => [l.k, l.pttl]))
    expect(backup.stderr).toMatch(new RegExp(`^backup: 69 keys of namespace '${ns}' \\(65 entries, 4 tag epochs`, 'm'))

    await cache.clear()
    expect(await namespaceKeys(raw, ns)).toEqual([])
    expect(await cache.get('rich')).toBeUndefined()

    const t1 = Date.now()
    const restored = await run(['restore', '--namespace', ns], backup.stdout)
    expect(restored.code, show(restored)).toBe(0)
    expect(restored.stdout).toMatch(new RegExp(`^restore: namespace '${ns}' .*: 69 restored, 0 skipped, 0 invalid lines, 0 failed`, 'm'))

    expect(await namespaceKeys(raw, ns)).toEqual(keysBefore)
    const pttlAfter = new Map(await Promise.all(keysBefore.map(async (k) => [k, await raw.pttl(k)] as const)))
    const restoreElapsed = Date.now() - t1
    for (const k of keysBefore) {
      const before = pttlBefore.get(k) as number
      const backedUp = inBackup.get(k) as number
      const after = pttlAfter.get(k) as number
      if (before === -1) expect(after, k).toBe(-1)
      else {
        // Restored with the TTL in the backup, less only the time since the restore...
        expect(after, k).toBeLessThanOrEqual(backedUp)
        expect(backedUp - after, `${k}: PTTL ${backedUp} in the backup, ${after} after the restore`).toBeLessThanOrEqual(restoreElapsed + 50)
        // ...so across the whole round trip it lost no more than the wall time that passed.
        expect(before - after, `${k}: PTTL ${before} before, ${after} after`).toBeLessThanOrEqual(Date.now() - t0 + 50)
        expect(after, k).toBeGreaterThan(before - 60_000)
      }
    }
    const got = await cache.get<typeof rich>('rich')
    expect(got).toEqual(rich)
    expect(got?.when).toBeInstanceOf(Date)
    expect(got?.map).toBeInstanceOf(Map)
    expect(got?.map.get('a')).toBe(1n)
    expect(got?.map.get('b')).toBeInstanceOf(Date)
    expect(typeof got?.big).toBe('bigint')
    expect(got?.big).toBe(2n ** 80n + 1n)
    expect(got?.set).toBeInstanceOf(Set)
    expect(await cache.get('forever')).toBe('no ttl')
    expect(await cache.get('invalidated')).toBeUndefined() // still invalidated: its tag epoch came back too
    expect(await cache.get('big-value')).toBe('x'.repeat(50_000))
    expect(await cache.namespace('child').get('c')).toEqual(new Set([1, 2, 3]))
    expect(await cache.getMany(['k:0', 'k:59'])).toEqual([0, 59])
    expect(await neighbour.get('k')).toBe('not in the backup')

    // Tags still work on the restored entries.
    await cache.invalidateTags(['t1'])
    expect(await cache.get('rich')).toBeUndefined()
    expect(await cache.get('forever')).toBe('no ttl')
    await cache.invalidateTags(['shared'])
    expect(await cache.get('forever')).toBeUndefined()
    await cache.namespace('child').invalidateTags(['ct'])
    expect(await cache.namespace('child').get('c')).toBeUndefined()
  })

  it('restore skips keys that exist unless --replace; --out FILE and --from FILE work too', async () => {
    const cache = await open()
    const ns = cache.prefix
    await cache.set('a', 'original a', { tags: ['t'] })
    await cache.set('b', 'original b')
    await cache.set('c', 'original c', { ttl: '10m' })
    const dir = join(REPO, '.vitest-tmp', `cli-${randomUUID().slice(0, 8)}`)
    await mkdir(dir, { recursive: true })
    try {
      const file = join(dir, 'backup.jsonl')
      const backup = await run(['backup', '--namespace', ns, '--out', file])
      expect(backup.code, show(backup)).toBe(0)
      expect(backup.stdout).toBe('')
      expect((await readFile(file, 'utf8')).trimEnd().split('\n')).toHaveLength(1 + 4)

      await cache.set('a', 'changed a', { tags: ['t'] })
      await cache.delete('b')
      const r = await run(['restore', '--from', file, '--namespace', ns])
      expect(r.code, show(r)).toBe(0)
      expect(r.stdout).toMatch(/: 1 restored, 3 skipped \(already present; --replace overwrites them\)/)
      expect(await cache.getMany(['a', 'b', 'c'])).toEqual(['changed a', 'original b', 'original c'])

      const running = await server(ns)
      expect(await running.get('a')).toBe('changed a') // in its L1 now
      const json = await run(['restore', '--from', file, '--replace', '--json', '--namespace', ns])
      expect(json.code, show(json)).toBe(0)
      expect(JSON.parse(json.stdout)).toMatchObject({ namespace: ns, restored: 4, skipped: 0, invalid: 0, failed: 0 })
      expect(await cache.getMany(['a', 'b', 'c'])).toEqual(['original a', 'original b', 'original c'])
      expect(await raw.pttl(`${ns}:c`)).toBeGreaterThan(500_000)
      // restore tells running processes to drop their L1 copies of the namespace.
      await eventually(async () => expect(await running.get('a')).toBe('original a'), 3000)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('restore: a header mismatch or a bad line is a clear error with exit 1; valid lines still restore', async () => {
    const cache = await open()
    const ns = cache.prefix
    await cache.set('good', { ok: true })
    const backup = await run(['backup', '--namespace', ns])
    expect(backup.code, show(backup)).toBe(0)
    await cache.clear()

    const wrongNs = await run(['restore', '--namespace', `${ns}-other`], backup.stdout)
    expect(wrongNs.code, show(wrongNs)).toBe(1)
    expect(wrongNs.stderr.trim()).toBe(`nearcache: the backup is of namespace '${ns}', not '${ns}-other' (--namespace): restore it with --namespace ${ns}, or into '${ns}-other' with --into ${ns}-other`)

    for (const [input, message] of [
      ['', /stdin is empty: no nearcache backup header/],
      ['{"key": "a", "value": 1}\n', /stdin line 1: not a nearcache backup header/],
      ['not json at all\n', /stdin line 1: not a nearcache backup header/],
      [`{"nearcache_backup": 2, "namespace": "${ns}", "created": "x"}\n`, /backup format 2 is not supported/],
    ] as const) {
      const r = await run(['restore'], input)
      expect(r.code, show(r)).toBe(1)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(message)
    }
    expect(await namespaceKeys(raw, ns)).toEqual([])

    const [header, good] = backup.stdout.trimEnd().split('\n') as [string, string]
    const input = [
      header,
      '{"k": "truncated',
      good,
      JSON.stringify({ k: 'someone-else:key', v: 'AAAA', pttl: -1 }),
      JSON.stringify({ k: `${ns}:bad`, v: Buffer.from('not a dump payload').toString('base64'), pttl: -1 }),
      JSON.stringify({ k: `${ns}:x`, v: 'AAAA', pttl: 'soon' }),
    ].join('\n')
    const r = await run(['restore', '--namespace', ns], input)
    expect(r.code, show(r)).toBe(1)
    expect(r.stdout).toMatch(/: 1 restored, 0 skipped, 4 invalid lines, 0 failed/)
    expect(r.stderr).toMatch(/^restore: line 2: not valid JSON/m)
    expect(r.stderr).toMatch(/^restore: line 4: key "someone-else:key" is not in namespace/m)
    expect(r.stderr).toMatch(/^restore: line 5: key .*: the DUMP payload fails its CRC64 check/m)
    expect(r.stderr).toMatch(/^restore: line 6: "pttl" must be/m)
    expect(await cache.get('good')).toEqual({ ok: true })
    expect(await namespaceKeys(raw, ns)).toEqual([`${ns}:good`])
  })
})

describe('the built command', { timeout: TIMEOUT }, () => {
  const out = join(REPO, '.vitest-tmp', `cli-build-${randomUUID().slice(0, 8)}`)

  afterAll(async () => {
    await rm(out, { recursive: true, force: true })
  })

  it('compiles with the build config and runs with plain node (the package.json bin)', async () => {
    const pkg = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')) as { bin?: Record<string, string>; version: string }
    expect(pkg.bin).toEqual({ nearcache: './dist/src/cli/main.js' })
    // The build config into a private directory (npm run build would wipe dist/ under other tests' feet).
    const tsc = await runProcess(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', out], { timeout: 110_000 })
    expect(tsc.code, show(tsc)).toBe(0)
    const main = join(out, 'src', 'cli', 'main.js')
    expect((await readFile(main, 'utf8')).split('\n')[0]).toBe('#!/usr/bin/env node')
    const help = await runProcess(process.execPath, [main, '--help'])
    expect(help.code, show(help)).toBe(0)
    expect(help.stdout).toMatch(/^Usage: nearcache <command>/)
    const version = await runProcess(process.execPath, [main, '--version'])
    expect(version.stdout.trim()).toBe(pkg.version)
    const status = await runProcess(process.execPath, [main, 'status', '--json', '--scan-limit', '10', '--redis', inject('redisUrl')])
    expect(status.code, show(status)).toBe(0)
    expect(JSON.parse(status.stdout).mode).toBe('standalone')
  })
})
