import { spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { eventStream } from '../../src/observability/event_stream.js'
import { serveMetrics } from '../../src/observability/http_endpoint.js'
import { renderPrometheus } from '../../src/observability/prometheus.js'
import { emptyStats } from '../../src/observability/stats.js'
import { CLI_TIMEOUT, MAIN, REPO, cleanEnv, nearcache, show } from '../helpers/cli_runner.js'
import type { Result } from '../helpers/cli_runner.js'

/**
 * `nearcache stats --from` and `events tail --from` against an endpoint with a
 * token (--token or $NEARCACHE_METRICS_TOKEN), and against a hostile endpoint
 * whose answers are too big: each a one-line error, never an unbounded read.
 */

const TOKEN = '0123456789abcdef0123456789abcdef'
const closers: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const c of closers) await c()
})

function withEnv(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: REPO, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

async function hostile(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  closers.push(() => new Promise((r) => { server.closeAllConnections(); server.close(r) }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('--token', { timeout: CLI_TIMEOUT, concurrent: true }, () => {
  it('stats --from: 401 without the token says how to pass it; --token and $NEARCACHE_METRICS_TOKEN work', async () => {
    const emitter = new EventEmitter()
    const server = await serveMetrics({ prefix: 'x', stats: () => emptyStats(), events: (o) => eventStream(emitter, o) }, { token: TOKEN })
    closers.push(() => server.close())
    const url = `${server.url}/metrics`
    const none = await nearcache(['stats', '--from', url])
    expect(none.code, show(none)).toBe(1)
    expect(none.stderr.trim()).toBe(`nearcache: cannot read metrics from ${url} (HTTP 401 Unauthorized; the endpoint wants a token: pass --token or set $NEARCACHE_METRICS_TOKEN)`)
    const wrong = await nearcache(['stats', '--from', url, '--token', `${TOKEN}0`])
    expect(wrong.stderr).toContain('(HTTP 401 Unauthorized; the token was refused)')
    const flag = await nearcache(['stats', '--from', url, '--token', TOKEN, '--json'])
    expect(flag.code, show(flag)).toBe(0)
    expect(JSON.parse(flag.stdout)).toMatchObject({ source: url, circuit: 'closed' })
    const env = await withEnv(['stats', '--from', url], { NEARCACHE_METRICS_TOKEN: TOKEN })
    expect(env.code, show(env)).toBe(0)

    const tail = await nearcache(['events', 'tail', '--from', server.url, '--count', '1'])
    expect(tail.code, show(tail)).toBe(1)
    expect(tail.stderr).toContain('HTTP 401 Unauthorized; the endpoint wants a token')
    const following = withEnv(['events', 'tail', '--from', server.url, '--count', '1', '--json'], { NEARCACHE_METRICS_TOKEN: TOKEN })
    const deadline = Date.now() + 30_000
    while (emitter.listenerCount('eviction') === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
    emitter.emit('eviction', { key: 'x:1' })
    const r = await following
    expect(r.code, show(r)).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'eviction', key: 'x:1' })
  })
})

describe('bounded reads of a hostile endpoint', { timeout: CLI_TIMEOUT, concurrent: true }, () => {
  it('stats --from: a metrics body over 8 MiB is refused (declared or streamed), one line', async () => {
    const metrics = renderPrometheus(emptyStats())
    let sent = 0
    const base = await hostile((req, res) => {
      if (req.url === '/declared') {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(9 * 1024 * 1024) })
        res.write(metrics)
        return
      }
      // Chunked, no length: 64 MiB of valid-looking lines unless the client stops reading.
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      const line = `${metrics}\n`
      const more = () => {
        while (sent < 64 * 1024 * 1024) {
          sent += line.length
          if (!res.write(line)) return void res.once('drain', more)
        }
        res.end()
      }
      res.on('close', () => (sent = Infinity))
      more()
    })
    for (const path of ['/declared', '/streamed']) {
      const r = await nearcache(['stats', '--from', `${base}${path}`])
      expect(r.code, show(r)).toBe(1)
      expect(r.stderr.trim()).toBe(`nearcache: the metrics from ${base}${path} is over 8388608 bytes; not reading it`)
    }
  })

  it('events tail --from: an NDJSON line over 4 MiB ends the tail with its line number, one line', async () => {
    const base = await hostile((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' })
      res.write(`${JSON.stringify({ type: 'circuit', at: Date.now(), state: 'open' })}\n`)
      const chunk = 'z'.repeat(64 * 1024)
      let n = 0
      const more = () => {
        while (n++ < 1024) if (!res.write(chunk)) return void res.once('drain', more)
      }
      res.on('close', () => (n = Infinity))
      more()
    })
    const r = await nearcache(['events', 'tail', '--from', base, '--count', '5'])
    expect(r.code, show(r)).toBe(1)
    expect(r.stdout).toMatch(/circuit {2}open/)
    expect(r.stderr.trim().split('\n').at(-1)).toBe(`nearcache: the event stream from ${base}/events: line 2 is longer than 4194304 bytes`)
  })
})
