import net from 'node:net';

const HOST = '127.0.0.1';
/** Ports handed out by this process, so parallel callers never get the same one. */
const reserved = new Set<number>();

/** Resolves true if `port` can be bound on 127.0.0.1 right now. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ host: HOST, port, exclusive: true }, () => {
      srv.close(() => resolve(true));
    });
  });
}

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: HOST, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Finds a free loopback port. With `clusterBus`, port + 10000 (the Redis
 * Cluster bus port) must be free as well.
 */
export async function getFreePort(opts: { clusterBus?: boolean } = {}): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await ephemeralPort();
    if (port === 0 || reserved.has(port)) continue;
    if (opts.clusterBus) {
      const bus = port + 10000;
      if (bus > 65535 || reserved.has(bus) || !(await isPortFree(bus))) continue;
      reserved.add(bus);
    }
    reserved.add(port);
    return port;
  }
  throw new Error('getFreePort: could not find a free loopback port');
}
