import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { uniqueNamespace } from '../helpers/backends.js'

/**
 * The published package, used the way a user uses it: `npm pack` in the repo
 * (prepack builds dist/), `npm install <tarball>` into a fresh directory outside
 * the repo, then a plain ESM script run with `node` that imports 'nearcache'.
 * Nothing here imports from src/: only the installed copy is exercised.
 */

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const TIMEOUT = 180_000

interface Run {
  stdout: string
  stderr: string
}

/**
 * The environment for child processes: ours minus what npm (when the suite runs
 * under `npm test`) and vitest put there, so the child npm reads only the user's
 * real configuration and the child node starts like a user's would.
 */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'NODE_OPTIONS' || k.startsWith('VITEST') || k === 'NEARCACHE_REDIS_URL') continue
    env[k] = v
  }
  return { ...env, ...extra }
}

function run(cmd: string, args: string[], cwd: string, env = cleanEnv(), timeout = 120_000): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    execFile(cmd, args, { cwd, env, timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string }
        reject(new Error(
          `\`${cmd} ${args.join(' ')}\` in ${cwd} failed (${e.killed ? `killed by ${e.signal}, timeout ${timeout} ms` : `exit ${String(e.code)}`}).\n` +
            `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
        ))
        return
      }
      resolvePromise({ stdout, stderr })
    })
  })
}

/** The consumer script: plain JavaScript, run by `node` in the install directory. */
const CONSUMER_SCRIPT = String.raw`
import { createCache, CacheError } from 'nearcache'

const out = {
  resolved: {
    nearcache: import.meta.resolve('nearcache'),
    msgpackr: import.meta.resolve('msgpackr'),
    lz4: import.meta.resolve('lz4-napi'),
  },
}

// L2: the standalone Redis of the test harness.
const cache = await createCache({ redis: process.env.NC_TEST_REDIS_URL, namespace: process.env.NC_TEST_NAMESPACE })
try {
  out.setResult = await cache.set('roundtrip', { a: 1, when: new Date(0), big: 10n })
  const got = await cache.get('roundtrip')
  out.roundTrip = {
    keys: Object.keys(got ?? {}).sort(),
    a: got?.a,
    whenIsDate: got?.when instanceof Date,
    whenMs: got?.when instanceof Date ? got.when.getTime() : null,
    bigType: typeof got?.big,
    bigIsTen: got?.big === 10n,
  }
  out.l2 = { enabled: cache.stats().l2.enabled, sets: cache.stats().l2.sets, l1Hits: cache.stats().l1.hits }
  try {
    await cache.get('')
    out.invalidKey = { rejected: false }
  } catch (e) {
    out.invalidKey = { rejected: true, isCacheError: e instanceof CacheError, isError: e instanceof Error, code: e?.code, name: e?.name }
  }
} finally {
  await cache.close()
}

// No L2: the in-process tier.
const mem = await createCache({ redis: false })
try {
  await mem.set('k', { n: 2n, d: new Date(5) })
  const v = await mem.get('k')
  out.memory = {
    l1Enabled: mem.stats().l1.enabled,
    l2Enabled: mem.stats().l2.enabled,
    ok: v?.n === 2n && v?.d instanceof Date && v.d.getTime() === 5,
    missing: (await mem.get('nope')) === undefined,
  }
} finally {
  await mem.close()
}

// The native modules load in this installed copy.
const msgpackr = await import('msgpackr')
out.msgpackrNative = msgpackr.isNativeAccelerationEnabled
const lz4mod = await import('lz4-napi')
const lz4 = typeof lz4mod.compressSync === 'function' ? lz4mod : lz4mod.default
const input = Buffer.from('nearcache '.repeat(500))
const packed = lz4.compressSync(input)
out.lz4 = { packedSmaller: packed.length < input.length, roundTrip: Buffer.compare(lz4.uncompressSync(packed), input) === 0 }

process.stdout.write('NC_RESULT ' + JSON.stringify(out) + '\n')
`

/** A TypeScript consumer: the shipped .d.ts files must type-check its use. */
const CONSUMER_TS = `
import { createCache, CacheError, InvalidKeyError } from 'nearcache'
import type { NearCache, CacheOptions, CacheErrorCode, CacheStats } from 'nearcache'

const options: CacheOptions = { redis: false, ttl: '5m', namespace: 'app' }
const cache: NearCache = await createCache(options)
const n: number | undefined = await cache.get<number>('k')
const v: string = await cache.getOrSet('k2', async () => 'x', { ttl: 1000, tags: ['t'] })
const stats: CacheStats = cache.stats()
const code: CacheErrorCode = 'E_INVALID_KEY'
const isKeyErr: boolean = new InvalidKeyError('m') instanceof CacheError
// @ts-expect-error unknown options are a type error
await createCache({ nope: 1 })
// @ts-expect-error keys are strings
await cache.get(1)
console.log(n, v, stats.l1.hits, code, isKeyErr)
await cache.close()
`

describe('the packed npm package, installed into another directory', { timeout: TIMEOUT }, () => {
  let work = ''
  let tarball = ''
  let entries: string[] = []
  let installDir = ''

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'nearcache-pkg-'))
    const packDir = join(work, 'pack')
    installDir = join(work, 'app')
    await mkdir(packDir)
    await mkdir(installDir)

    // prepack runs `npm run build` (tsc -p tsconfig.build.json): a type error in src/ fails here.
    await run(NPM, ['pack', '--pack-destination', packDir], REPO, cleanEnv(), 150_000)
    const tgz = (await readdir(packDir)).filter((f) => f.endsWith('.tgz'))
    expect(tgz, 'npm pack should produce exactly one tarball').toHaveLength(1)
    tarball = join(packDir, tgz[0] as string)
    entries = (await run('tar', ['-tzf', tarball], work)).stdout.split('\n').filter(Boolean)

    await writeFile(join(installDir, 'package.json'), JSON.stringify({ name: 'nearcache-consumer', private: true, type: 'module' }, null, 2))
    await run(NPM, ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], installDir, cleanEnv(), 150_000)
  }, TIMEOUT)

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true })
  })

  it('ships the compiled build and its types, and no sources or tests', () => {
    expect(entries).toContain('package/package.json')
    expect(entries).toContain('package/dist/src/index.js')
    expect(entries).toContain('package/dist/src/index.d.ts')
    // create.js imports ../wasm/hash.js: the runtime closure of index.js must be in the tarball.
    expect(entries).toContain('package/dist/wasm/hash.js')
    const sources = entries.filter((e) => e.endsWith('.ts') && !e.endsWith('.d.ts'))
    expect(sources, 'TypeScript sources in the tarball').toEqual([])
    expect(entries.filter((e) => /^package\/(src|test|dist\/test|scratch|bench|demo)\//.test(e)), 'non-published folders in the tarball').toEqual([])
  })

  it('imports, round-trips through Redis, works without Redis, rejects bad keys and loads its native modules', async () => {
    const redisUrl = inject('redisUrl')
    const namespace = uniqueNamespace('pkg')
    await writeFile(join(installDir, 'consumer.mjs'), CONSUMER_SCRIPT)
    const { stdout, stderr } = await run(
      process.execPath,
      ['consumer.mjs'],
      installDir,
      cleanEnv({ NC_TEST_REDIS_URL: redisUrl, NC_TEST_NAMESPACE: namespace }),
      60_000,
    )
    const line = stdout.split('\n').find((l) => l.startsWith('NC_RESULT '))
    expect(line, `the consumer printed no result.\nstdout:\n${stdout}\nstderr:\n${stderr}`).toBeDefined()
    const out = JSON.parse((line as string).slice('NC_RESULT '.length))

    // Everything came from the installed copy, not from the repo.
    const installedModules = `file://${join(installDir, 'node_modules')}/`
    for (const [name, url] of Object.entries(out.resolved as Record<string, string>)) {
      expect(url.startsWith(installedModules), `${name} resolved to ${url}`).toBe(true)
    }
    expect(out.resolved.nearcache).toBe(`${installedModules}nearcache/dist/src/index.js`)

    expect(out.setResult).toBe(true)
    expect(out.roundTrip).toEqual({ keys: ['a', 'big', 'when'], a: 1, whenIsDate: true, whenMs: 0, bigType: 'bigint', bigIsTen: true })
    expect(out.l2).toEqual({ enabled: true, sets: 1, l1Hits: 1 })
    expect(out.invalidKey).toEqual({ rejected: true, isCacheError: true, isError: true, code: 'E_INVALID_KEY', name: 'InvalidKeyError' })
    expect(out.memory).toEqual({ l1Enabled: true, l2Enabled: false, ok: true, missing: true })
    expect(out.msgpackrNative, 'msgpackr native acceleration (msgpackr-extract) in the installed copy').toBe(true)
    expect(out.lz4).toEqual({ packedSmaller: true, roundTrip: true })

    // The entry really is in Redis, under <namespace>:<key>.
    const raw = new Redis(redisUrl)
    try {
      expect(await raw.exists(`${namespace}:roundtrip`)).toBe(1)
      await raw.del(`${namespace}:roundtrip`)
    } finally {
      raw.disconnect()
    }
  })

  it('type-checks a TypeScript consumer against the shipped declarations', async () => {
    await writeFile(join(installDir, 'consumer.ts'), CONSUMER_TS)
    await writeFile(
      join(installDir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          // A TS user has @types/node; borrow the repo's rather than install it again.
          typeRoots: [join(REPO, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    )
    await run(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], installDir, cleanEnv(), 60_000)
  })
})
