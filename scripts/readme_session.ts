/**
 * Produces the "Operating nearcache" transcript in the README: starts a throw-away
 * Redis and Redis Cluster, runs an application process with serveMetrics(), and
 * runs each `nearcache` command against them the way an operator would, printing
 * `$ command` and its real output.
 *
 *   npm run build && node --import tsx scripts/readme_session.ts > /tmp/session.txt
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createCache, serveMetrics } from '../src/index.js'
import { startCluster, startStandalone } from '../test/helpers/redis_servers.js'

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)))
// The built command, as the package's bin runs it (run `npm run build` first).
const MAIN = join(REPO, 'dist', 'src', 'cli', 'main.js')
const work = mkdtempSync(join(tmpdir(), 'nc-readme-'))

interface Run {
  shown: string
  args: string[]
  stdin?: string
  stdoutTo?: string
}

function run(r: Run): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [MAIN, ...r.args], { cwd: work, stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      if (!r.stdoutTo) out += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.stdin.end(r.stdin ?? '')
    child.on('error', fail)
    child.on('close', (code) => {
      if (r.stdoutTo) writeFileSync(join(work, r.stdoutTo), stdout)
      done(`$ ${r.shown}\n${out.trimEnd()}${code === 0 ? '' : `\n(exit ${code})`}\n`)
    })
  })
}

const standalone = await startStandalone()
const cluster = await startCluster({ masters: 3, replicasPerMaster: 1 })
const seeds = cluster.masters.map((m) => `${m.host}:${m.port}`).join(',')
const R = standalone.url
const sections: string[] = []
try {
  // The application: a small L1 so that it evicts, namespaces shop and shop:users.
  const app = await createCache({ redis: R, namespace: 'shop', ttl: '10m', l1: { maxBytes: '256kb' } })
  const users = app.namespace('users')
  const server = await serveMetrics(app, { port: 9464 })
  const load = async (id: number) => ({ id, name: `product ${id}`, price: id % 100, description: 'x'.repeat(400) })
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 3000; i++) {
      const id = Math.floor(Math.pow(Math.random(), 3) * 2000)
      await app.getOrSet(`item:${id}`, () => load(id), { tags: ['products'] })
    }
  }
  for (let i = 0; i < 50; i++) await users.set(`user:${i}`, { id: i, name: `user ${i}` })
  for (let i = 0; i < 80; i++) await users.get(`user:${i}`)

  sections.push(await run({ shown: `nearcache status --redis ${R}`, args: ['status', '--redis', R] }))
  sections.push(await run({ shown: `nearcache status --cluster ${seeds}`, args: ['status', '--cluster', seeds] }))
  sections.push(await run({ shown: `nearcache stats --from ${server.url}/metrics`, args: ['stats', '--from', `${server.url}/metrics`] }))
  sections.push(await run({ shown: `nearcache stats --redis ${R}`, args: ['stats', '--redis', R] }))

  // events tail on the Redis bus while the application invalidates.
  const tail = run({ shown: `nearcache events tail --redis ${R} --namespace shop --count 3`, args: ['events', 'tail', '--redis', R, '--namespace', 'shop', '--count', '3'] })
  const followed = run({
    shown: `nearcache events tail --from ${server.url} --type eviction,invalidation --count 4`,
    args: ['events', 'tail', '--from', server.url, '--type', 'eviction,invalidation', '--count', '4'],
  })
  await new Promise((r) => setTimeout(r, 1500))
  await app.delete('item:1')
  await app.invalidatePrefix('item:19')
  await app.invalidateTags(['products'])
  for (let i = 3000; i < 3400; i++) await app.set(`item:${i}`, await load(i))
  sections.push(await tail, await followed)

  writeFileSync(
    join(work, 'products.jsonl'),
    [
      '{"key":"item:1","value":{"name":"lamp","price":30},"tags":["products"]}',
      '{"key":"item:2","value":{"name":"desk","price":120}}',
      '{"key":"item:3","value":{"name":"chair","price":45},"ttl":"30m"}',
      '{"key":"item:4","value":{"name":"shelf" "price":60}}',
      '{"key":"item:5","value":{"name":"rug","price":80}}',
    ].join('\n') + '\n',
  )
  sections.push(
    await run({ shown: `nearcache invalidate --redis ${R} --namespace shop --tag products --prefix item:2 --key users:user:1 --key users:user:99`, args: ['invalidate', '--redis', R, '--namespace', 'shop', '--tag', 'products', '--prefix', 'item:2', '--key', 'users:user:1', '--key', 'users:user:99'] }),
  )
  sections.push(await run({ shown: `nearcache warm --redis ${R} --namespace shop --from products.jsonl --ttl 1h`, args: ['warm', '--redis', R, '--namespace', 'shop', '--from', 'products.jsonl', '--ttl', '1h'] }))
  sections.push(await run({ shown: `nearcache backup --redis ${R} --namespace shop --out shop.backup`, args: ['backup', '--redis', R, '--namespace', 'shop', '--out', 'shop.backup'] }))
  sections.push(await run({ shown: `nearcache restore --cluster ${seeds} --namespace shop --from shop.backup`, args: ['restore', '--cluster', seeds, '--namespace', 'shop', '--from', 'shop.backup'] }))
  sections.push(await run({ shown: `nearcache status --redis redis://127.0.0.1:6390`, args: ['status', '--redis', 'redis://127.0.0.1:6390'] }))
  sections.push(await run({ shown: 'nearcache bench --suite hash', args: ['bench', '--suite', 'hash'] }))
  await server.close()
  await app.close()
} finally {
  await cluster.stop()
  await standalone.stop()
}
process.stdout.write(sections.join('\n'))
