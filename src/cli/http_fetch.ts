/**
 * The CLI's reads of a serveMetrics endpoint (`stats --from`, `events tail --from`):
 * the bearer token, and bounds on what the other side can make us hold. What comes
 * back is hostile input: its size, its lines and the time it takes are capped.
 */
import { str } from './args.js'
import type { OptionValues } from './args.js'
import { CliError, UsageError, oneLine } from './errors.js'

/** Largest /metrics body read (nearcache's own text is a few KiB per namespace). */
export const MAX_METRICS_BYTES = 8 * 1024 * 1024
/** Longest NDJSON line of /events (an invalidation event lists keys and prefixes). */
export const MAX_EVENT_LINE_BYTES = 4 * 1024 * 1024

export const TOKEN_ENV = 'NEARCACHE_METRICS_TOKEN'
export const TOKEN_HELP = `  --token TOKEN         Bearer token of the endpoint (serveMetrics's token); default
                        $${TOKEN_ENV}, which keeps it out of the process list`

/** The token from --token or $NEARCACHE_METRICS_TOKEN; undefined when neither is set. */
export function metricsToken(values: OptionValues, env: NodeJS.ProcessEnv, command: string): string | undefined {
  const t = str(values.token) ?? (env[TOKEN_ENV] || undefined)
  if (t !== undefined && !/^[\x21-\x7e]+$/.test(t)) {
    throw new UsageError(`--token (or $${TOKEN_ENV}) must be visible ASCII characters without spaces`, command)
  }
  return t
}

/** Request headers: what to accept, and the token when there is one. */
export function requestHeaders(accept: string, token: string | undefined): Record<string, string> {
  return token === undefined ? { accept } : { accept, authorization: `Bearer ${token}` }
}

/** The hint for a 401: whether a token was sent decides what to say. */
export function statusHint(status: number, token: string | undefined): string {
  if (status === 401) return token === undefined ? `; the endpoint wants a token: pass --token or set $${TOKEN_ENV}` : '; the token was refused'
  if (status === 503) return '; the endpoint is busy (too many /events streams?)'
  return ''
}

/**
 * The body of `res` as text, at most `maxBytes` bytes (a CliError beyond, read no further).
 * Time is bounded by the signal the fetch was made with.
 */
export async function boundedText(res: Response, maxBytes: number, what: string): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN)
  const tooBig = () => new CliError(`${what} is over ${maxBytes} bytes; not reading it`)
  if (declared > maxBytes) {
    void res.body?.cancel().catch(() => {})
    throw tooBig()
  }
  if (!res.body) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = res.body.getReader()
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > maxBytes) throw tooBig()
      chunks.push(value)
    }
  } catch (err) {
    if (err instanceof CliError) throw err
    throw new CliError(`cannot read ${what} (${oneLine((err as { cause?: unknown }).cause ?? err)})`, { cause: err })
  } finally {
    void reader.cancel().catch(() => {})
  }
  return new TextDecoder().decode(Buffer.concat(chunks, size))
}
