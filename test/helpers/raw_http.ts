import net from 'node:net'

/** What a raw request got: a status line (and the body when it had a Content-Length), or a closed connection. */
export type RawOutcome = { kind: 'response'; status: number; headers: Record<string, string>; body: string } | { kind: 'closed' }

/**
 * Sends `request` (bytes as given, nothing added) on a new connection to 127.0.0.1:`port`
 * and reads the answer's head, and its body when it has a Content-Length (not after
 * HEAD). Streams (/events) resolve at their head. Rejects only when nothing happens
 * within `ms`: a hang.
 */
export function rawRequest(port: number, request: string | Buffer, headOnly: boolean, ms = 15_000): Promise<RawOutcome> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port })
    let buf = Buffer.alloc(0)
    let done = false
    const finish = (o: RawOutcome | Error) => {
      if (done) return
      done = true
      clearTimeout(timer)
      sock.destroy()
      if (o instanceof Error) reject(o)
      else resolve(o)
    }
    const timer = setTimeout(() => finish(new Error(`no answer within ${ms} ms to ${JSON.stringify(String(request).slice(0, 200))}`)), ms)
    sock.on('error', () => finish({ kind: 'closed' }))
    sock.on('close', () => finish({ kind: 'closed' }))
    sock.on('connect', () => sock.write(request))
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) return
      const [statusLine = '', ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
      if (!m) return finish(new Error(`not an HTTP response: ${JSON.stringify(statusLine)}`))
      const headers: Record<string, string> = {}
      for (const l of lines) {
        const c = l.indexOf(':')
        headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim()
      }
      const length = Number(headers['content-length'] ?? NaN)
      const body = buf.subarray(end + 4)
      if (headOnly || !Number.isFinite(length)) return finish({ kind: 'response', status: Number(m[1]), headers, body: '' })
      if (body.length >= length) finish({ kind: 'response', status: Number(m[1]), headers, body: body.subarray(0, length).toString('utf8') })
    })
  })
}
