// One command over a raw RESP connection (plain or TLS), for the harness's
// readiness checks and for tests that talk to a server behind nearcache's back.
import net from 'node:net';
import tls from 'node:tls';
import type { ServerTls } from './redis_servers.js';

const HOST = '127.0.0.1';

/**
 * The harness's own TLS client options: it presents the test client certificate and
 * does not verify the server (readiness checks are not what a test proves).
 */
export function harnessTls(t: ServerTls): tls.ConnectionOptions {
  return { ca: t.files.caPem, cert: t.files.client.certPem, key: t.files.client.keyPem, rejectUnauthorized: false };
}

/** Sends one command over a raw RESP connection (TLS with `tlsOptions`); resolves simple/bulk/integer replies as strings. */
export function rawCommand(port: number, args: string[], timeoutMs = 2000, tlsOptions?: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tlsOptions ? tls.connect({ host: HOST, port, ...tlsOptions }) : net.connect({ host: HOST, port });
    let buf = Buffer.alloc(0);
    const done = (err: Error | null, val?: string) => {
      clearTimeout(timer); sock.destroy();
      if (err) reject(err); else resolve(val ?? '');
    };
    const timer = setTimeout(() => done(new Error(`timeout waiting for ${args[0]} on :${port}`)), timeoutMs);
    sock.on('error', (e) => done(e));
    sock.on(tlsOptions ? 'secureConnect' : 'connect', () => {
      sock.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const eol = buf.indexOf('\r\n');
      if (eol < 0) return;
      const head = buf.subarray(1, eol).toString();
      switch (String.fromCharCode(buf[0] ?? 0)) {
        case '+': case ':': return done(null, head);
        case '-': return done(new Error(head));
        case '$': {
          const len = Number(head);
          if (len < 0) return done(null, '');
          if (buf.length >= eol + 2 + len + 2) done(null, buf.subarray(eol + 2, eol + 2 + len).toString());
          return;
        }
        default: return done(new Error(`unexpected reply: ${buf.toString().slice(0, 80)}`));
      }
    });
  });
}
