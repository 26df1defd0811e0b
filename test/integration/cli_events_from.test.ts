import { EventEmitter } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { CACHE_EVENT_TYPES, eventStream } from '../../src/observability/event_stream.js'
import type { InvalidationNotice } from '../../src/observability/event_stream.js'
import { serveMetrics } from '../../src/observability/http_endpoint.js'
import type { MetricsServer, MetricsSource } from '../../src/observability/http_endpoint.js'
import { CacheError } from '../../src/index.js'
import { getFreePort } from '../helpers/free_port.js'
import { CLI_TIMEOUT, nearcache, show, start, until } from '../helpers/cli_runner.js'

/**
 * `nearcache events tail --from URL`, run as a user runs it: a child process
 * (`node --import tsx src/cli/main.ts ...`) following the /events stream of a
 * serveMetrics server in this test, whose source is an EventEmitter the test
 * emits on. Checked by stdout, stderr and exit code.
 */

const servers: { close(): Promise<unknown> }[] = []
afterAll(async () => {
  for (const s of servers) await s.close()
})

/** serveMetrics over an EventEmitter standing in for a cache. */
async function fakeProcess(): Promise<{ server: MetricsServer; emitter: EventEmitter }> {
  const emitter = new EventEmitter()
  const source: MetricsSource = {
    prefix: 'shop',
    stats: () => {
      throw new Error('not used by /events')
    },
    events: (o) => eventStream(emitter, o),
  }
  const server = await serveMetrics(source)
  servers.push(server)
  return { server, emitter }
}

const listeners = (e: EventEmitter) => Object.fromEntries(CACHE_EVENT_TYPES.map((t) => [t, e.listenerCount(t)]))
const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'

describe('nearcache events tail --from', { timeout: CLI_TIMEOUT, concurrent: true }, () => {
  it('--count 3 --json prints the first three events as JSON lines and exits 0, unsubscribing', async () => {
    const { server, emitter } = await fakeProcess()
    const run = start(['events', 'tail', '--from', server.url, '--count', '3', '--json'])
    await until(() => run.output().stderr.includes('listening'), 30_000, 'the CLI to follow the stream')
    expect(run.output().stderr).toContain(`${server.url}/events`)
    const received: InvalidationNotice = { direction: 'received', keys: ['shop:item:1', '__nc|t|shop|products'], prefixes: ['shop:cart:'], publisher: 'pub-a' }
    emitter.emit('eviction', { key: 'shop:item:7' })
    emitter.emit('invalidation', received)
    emitter.emit('error', new CacheError('E_CORRUPT_ENTRY', 'entry shop:x is corrupt'))
    emitter.emit('circuit', 'open') // the fourth: not printed
    const r = await run.done
    expect(r.code, show(r)).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines, show(r)).toHaveLength(3)
    const got = lines.map((l) => JSON.parse(l) as { at: string })
    for (const g of got) expect(g.at).toMatch(new RegExp(`^${ISO}$`))
    expect(got.map(({ at: _at, ...rest }) => rest)).toEqual([
      { type: 'eviction', key: 'shop:item:7' },
      { type: 'invalidation', direction: 'received', keys: ['shop:item:1', '__nc|t|shop|products'], prefixes: ['shop:cart:'], publisher: 'pub-a' },
      { type: 'error', code: 'E_CORRUPT_ENTRY', message: 'entry shop:x is corrupt' },
    ])
    // The CLI closed its connection: the server unsubscribed.
    await until(() => emitter.listenerCount('eviction') === 0, 5000, 'the subscription to be removed')
    expect(listeners(emitter)).toEqual({ error: 0, circuit: 0, eviction: 0, invalidation: 0 })
  })

  it('readable lines; --type goes to the server, --namespace narrows; the /events URL works too', async () => {
    const { server, emitter } = await fakeProcess()
    const run = start(['events', 'tail', '--from', `${server.url}/events`, '--type', 'eviction,invalidation', '--namespace', 'shop', '--count', '3'])
    await until(() => run.output().stderr.includes('listening'), 30_000, 'the CLI to follow the stream')
    expect(listeners(emitter)).toEqual({ error: 0, circuit: 0, eviction: 1, invalidation: 1 })
    emitter.emit('eviction', { key: 'blog:post:1' }) // another namespace
    emitter.emit('eviction', { key: 'shopping:1' }) // not 'shop:'
    emitter.emit('eviction', { key: 'shop:item:7' })
    emitter.emit('invalidation', { direction: 'sent', keys: ['blog:a', 'shop:b'], prefixes: ['blog:'] } satisfies InvalidationNotice)
    emitter.emit('invalidation', { direction: 'received', keys: ['blog:a'], prefixes: [], publisher: 'p' } satisfies InvalidationNotice)
    emitter.emit('invalidation', { direction: 'flush', keys: [], prefixes: [''], reason: 'gap' } satisfies InvalidationNotice)
    const r = await run.done
    expect(r.code, show(r)).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines, show(r)).toHaveLength(3)
    expect(lines[0]).toMatch(new RegExp(`^${ISO}  eviction  key "shop:item:7"$`))
    expect(lines[1]).toMatch(new RegExp(`^${ISO}  invalidation  sent  keys "shop:b"$`))
    expect(lines[2]).toMatch(new RegExp(`^${ISO}  invalidation  flush  reason gap  prefixes ""$`))
  })

  it('errors and circuit changes pass the namespace filter, in the readable form', async () => {
    const { server, emitter } = await fakeProcess()
    const run = start(['events', 'tail', '--from', server.url, '--namespace', 'shop', '--count', '2'])
    await until(() => run.output().stderr.includes('listening'), 30_000, 'the CLI to follow the stream')
    emitter.emit('error', new Error('Redis went\naway'))
    emitter.emit('circuit', 'half-open')
    const r = await run.done
    expect(r.code, show(r)).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[0]).toMatch(new RegExp(`^${ISO}  error  Redis went away$`))
    expect(lines[1]).toMatch(new RegExp(`^${ISO}  circuit  half-open$`))
  })

  it('an unreachable URL: exit 1 and one line on stderr', async () => {
    const port = await getFreePort()
    const r = await nearcache(['events', 'tail', '--from', `http://127.0.0.1:${port}`, '--count', '3', '--json'])
    expect(r.code, show(r)).toBe(1)
    expect(r.stdout).toBe('')
    expect(r.stderr, show(r)).toMatch(new RegExp(`^nearcache: cannot read events from http://127\\.0\\.0\\.1:${port}/events \\(connect ECONNREFUSED [^)]+\\)\\n$`))
  })

  it('not a nearcache events endpoint (wrong content type, or 404): exit 1 and one line', async () => {
    const other = createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' })
      res.end('<html>hello</html>')
    })
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r))
    servers.push({ close: () => new Promise((r) => other.close(r)) })
    const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
    const wrong = await nearcache(['events', 'tail', '--from', url])
    expect(wrong.code, show(wrong)).toBe(1)
    expect(wrong.stderr).toBe(`nearcache: ${url}/events is not a nearcache events endpoint (Content-Type "text/html", expected application/x-ndjson)\n`)

    const noEvents = await serveMetrics({ prefix: 'x', stats: () => { throw new Error('unused') } })
    servers.push(noEvents)
    const missing = await nearcache(['events', 'tail', '--from', `${noEvents.url}/metrics`])
    expect(missing.code, show(missing)).toBe(1)
    expect(missing.stderr).toMatch(/^nearcache: cannot read events from http:\/\/127\.0\.0\.1:\d+\/events \(HTTP 404 Not Found; [^\n]*\)\n$/)
  })

  it('the stream ending (the process closed its server) is a failure, exit 1', async () => {
    const { server, emitter } = await fakeProcess()
    const run = start(['events', 'tail', '--from', server.url])
    await until(() => run.output().stderr.includes('listening'), 30_000, 'the CLI to follow the stream')
    emitter.emit('eviction', { key: 'shop:1' })
    await until(() => run.output().stdout.includes('shop:1'), 10_000, 'the first event')
    await server.close()
    const r = await run.done
    expect(r.code, show(r)).toBe(1)
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^nearcache: (the event stream from \S+ ended|lost the event stream from \S+ \(.*\))/)
  })

  it('Ctrl-C (SIGINT) stops it with exit 0 and closes the subscription', async () => {
    const { server, emitter } = await fakeProcess()
    const run = start(['events', 'tail', '--from', server.url])
    await until(() => run.output().stderr.includes('listening'), 30_000, 'the CLI to follow the stream')
    expect(emitter.listenerCount('eviction')).toBe(1)
    run.child.kill('SIGINT')
    const r = await run.done
    expect(r.code, show(r)).toBe(0)
    await until(() => emitter.listenerCount('eviction') === 0, 5000, 'the subscription to be removed')
  })

  it('usage errors: unknown --type, --type without --from, --from with --redis, a bad URL: exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--from', 'http://127.0.0.1:1', '--type', 'eviction,evictions'], /unknown event type 'evictions' for --type/],
      [['--type', 'eviction'], /--type works with --from only/],
      [['--from', 'http://127.0.0.1:1', '--redis', 'redis://127.0.0.1:1'], /either --from or --redis/],
      [['--from', 'ftp://example.com'], /--from takes an http:\/\/ or https:\/\/ URL/],
    ]
    for (const [args, message] of cases) {
      const r = await nearcache(['events', 'tail', ...args])
      expect(r.code, show(r)).toBe(2)
      expect(r.stderr).toMatch(message)
    }
  })

  it('--help lists --from and --type', async () => {
    const r = await nearcache(['events', 'tail', '--help'])
    expect(r.code, show(r)).toBe(0)
    expect(r.stdout).toMatch(/^Usage: nearcache events tail \[--from URL \[--type TYPES\]\]/)
    expect(r.stdout).toContain('--from URL')
    expect(r.stdout).toContain('--type TYPES')
    expect(r.stdout).toContain('nearcache events tail --from http://')
  })
})
