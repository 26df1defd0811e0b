// Spawns throw-away redis-server processes (standalone and cluster) for tests.
// Every server gets a free loopback port and its own temp dir; nothing here
// ever talks to the system Redis on 6379.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getFreePort } from './free_port.js';
import { harnessTls, rawCommand } from './raw_command.js';
import type { CertPair, TlsFiles } from './tls_certs.js';

export { rawCommand };

export interface HostPort { host: string; port: number }

/**
 * A TLS-only server (`--port 0 --tls-port P`): `port` is the TLS port and `url`
 * is rediss://. In a Cluster, `tls-cluster yes` and `tls-replication yes` as well,
 * so the bus and replication run over TLS and nodes announce their TLS ports.
 */
export interface ServerTls {
  files: TlsFiles;
  /** `--tls-auth-clients` (default 'no': clients need no certificate of their own). */
  authClients?: 'yes' | 'no' | 'optional';
  /** The certificate the server presents (default: files' server certificate for 127.0.0.1). */
  serverCert?: CertPair;
}

export interface RedisServerHandle {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly url: string;
  /** The server's temp working dir (kept across restart(), removed by stop()). */
  readonly dir: string;
  /** SIGTERM, wait for exit (SIGKILL after 5 s), remove the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Send a signal (default SIGKILL) without waiting, e.g. to simulate a crash. */
  kill(signal?: NodeJS.Signals): void;
  /** Stop the process if still alive, start it again on the same port and dir, wait for PING. */
  restart(): Promise<void>;
  /** Last few KB of the server's stdout/stderr. */
  logTail(): string;
  /** One command over a raw connection (over TLS, with the test client certificate, on a TLS server). */
  command(args: string[], timeoutMs?: number): Promise<string>;
}

export interface RedisClusterHandle {
  nodes: HostPort[];
  masters: HostPort[];
  /** Handles of every node (same order as `nodes`), to kill/restart single nodes. */
  servers: RedisServerHandle[];
  stop(): Promise<void>;
}

const HOST = '127.0.0.1' as const;
const live = new Set<ChildProcess>();
const dirs = new Set<string>();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// Last resort: never leave redis-server orphans behind when Node exits.
process.on('exit', () => {
  for (const c of live) { try { c.kill('SIGKILL'); } catch { /* already gone */ } }
  for (const d of dirs) { try { rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ } }
});

// `setpriv --pdeathsig KILL` makes the kernel SIGKILL redis-server if this
// process dies without running exit handlers (e.g. vitest SIGTERMs a worker).
let usePdeathsig: boolean | undefined;
function spawnCommand(args: string[]): [string, string[]] {
  if (usePdeathsig === undefined) {
    usePdeathsig = process.platform === 'linux' &&
      spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true'], { stdio: 'ignore' }).status === 0;
  }
  return usePdeathsig ? ['setpriv', ['--pdeathsig', 'KILL', '--', 'redis-server', ...args]] : ['redis-server', args];
}

class Server implements RedisServerHandle {
  readonly host = HOST;
  readonly url: string;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private log = '';
  private stopped = false;

  constructor(readonly port: number, readonly dir: string, private readonly extraArgs: string[], private readonly tls?: ServerTls) {
    this.url = `${tls ? 'rediss' : 'redis'}://${HOST}:${port}`;
    dirs.add(dir);
  }

  command(args: string[], timeoutMs = 2000): Promise<string> {
    return rawCommand(this.port, args, timeoutMs, this.tls ? harnessTls(this.tls) : undefined);
  }

  /** redis-server's port arguments: the plain port, or TLS only. */
  private portArgs(): string[] {
    const t = this.tls;
    if (!t) return ['--port', String(this.port)];
    const cert = t.serverCert ?? { cert: t.files.serverCert, key: t.files.serverKey };
    return ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', cert.cert, '--tls-key-file', cert.key,
      '--tls-ca-cert-file', t.files.caCert, '--tls-auth-clients', t.authClients ?? 'no'];
  }

  logTail(): string { return this.log.split('\n').slice(-30).join('\n'); }

  private alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  private spawn(): void {
    const args = ['--bind', HOST, ...this.portArgs(), '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--daemonize', 'no', '--protected-mode', 'no', '--enable-debug-command', 'yes',
      ...this.extraArgs];
    const [cmd, argv] = spawnCommand(args);
    const child = spawn(cmd, argv, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    live.add(child);
    const append = (d: Buffer) => { this.log = (this.log + d.toString()).slice(-8192); };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, sig) => { live.delete(child); this.log += `\n[exited code=${code} signal=${sig}]`; resolve(); });
      child.once('error', (e) => { live.delete(child); this.log += `\n[spawn error: ${e.message}]`; resolve(); });
    });
  }

  private async waitForPing(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.alive()) throw new Error(`redis-server on port ${this.port} exited during startup.\n${this.logTail()}`);
      try { if ((await this.command(['PING'], 1000)) === 'PONG') return; } catch (e) {
        if (/^NOAUTH\b/.test((e as Error).message)) return; // up, with --requirepass
      }
      await sleep(50);
    }
    throw new Error(`redis-server on port ${this.port} did not answer PING within ${timeoutMs} ms.\n${this.logTail()}`);
  }

  async start(): Promise<void> {
    this.spawn();
    await this.waitForPing();
  }

  private async terminate(): Promise<void> {
    if (!this.alive()) { await this.exited; return; }
    this.child?.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => { timer = setTimeout(() => r(true), 5000); }),
    ]);
    clearTimeout(timer);
    if (timedOut) { this.child?.kill('SIGKILL'); await this.exited; }
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive()) this.child?.kill(signal);
  }

  async restart(): Promise<void> {
    if (this.stopped) throw new Error(`restart(): server on port ${this.port} was stopped`);
    await this.terminate();
    await this.start();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.terminate();
    await rm(this.dir, { recursive: true, force: true });
    dirs.delete(this.dir);
  }
}

/** Creates and starts one server; with no fixed port, retries on a fresh port if startup fails. */
async function launch(extraArgs: string[], port: number | undefined, clusterBus: boolean, tlsConfig?: ServerTls): Promise<Server> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < (port === undefined ? 3 : 1); attempt++) {
    const p = port ?? (await getFreePort({ clusterBus }));
    const dir = await mkdtemp(path.join(os.tmpdir(), `nearcache-redis-${p}-`));
    const server = new Server(p, dir, extraArgs, tlsConfig);
    try {
      await server.start();
      return server;
    } catch (err) {
      lastErr = err;
      await server.stop();
    }
  }
  throw lastErr;
}

/** `args`: extra redis-server arguments (e.g. ['--requirepass', 'pw']); `tls`: a TLS-only server (see {@link ServerTls}). */
export async function startStandalone(opts: { port?: number; args?: string[]; tls?: ServerTls } = {}): Promise<RedisServerHandle> {
  return launch(opts.args ?? [], opts.port, false, opts.tls);
}

function runRedisCli(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

interface NodeLine { port: number; flags: string[]; hasSlots: boolean }
function parseClusterNodes(text: string): NodeLine[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((line) => {
    const f = line.trim().split(' ');
    const addr = f[1] ?? '';
    return { port: Number(addr.slice(addr.lastIndexOf(':') + 1).split('@')[0]), flags: (f[2] ?? '').split(','), hasSlots: f.length > 8 };
  });
}

async function waitClusterReady(servers: Server[], masters: number, timeoutMs: number): Promise<NodeLine[]> {
  const deadline = Date.now() + timeoutMs;
  const status = new Map<number, string>();
  while (Date.now() < deadline) {
    let ready = true;
    let view: NodeLine[] = [];
    for (const s of servers) {
      try {
        const info = await s.command(['CLUSTER', 'INFO']);
        view = parseClusterNodes(await s.command(['CLUSTER', 'NODES']));
        const ok = info.includes('cluster_state:ok') && info.includes('cluster_slots_assigned:16384') &&
          view.length === servers.length &&
          !view.some((n) => n.flags.some((f) => ['handshake', 'noaddr', 'fail', 'fail?'].includes(f))) &&
          view.filter((n) => n.flags.includes('master') && n.hasSlots).length === masters &&
          view.filter((n) => n.flags.includes('slave')).length === servers.length - masters;
        status.set(s.port, ok ? 'ok' : `${info.split('\r\n').slice(0, 3).join(' ')} | nodes:\n${view.map((n) => `${n.port} ${n.flags.join(',')}`).join('\n')}`);
        if (!ok) ready = false;
      } catch (err) {
        ready = false;
        status.set(s.port, `error: ${(err as Error).message}`);
      }
    }
    if (ready) return view;
    await sleep(100);
  }
  const details = [...status].map(([p, st]) => `:${p} -> ${st}`).join('\n');
  throw new Error(`Redis Cluster not ready within ${timeoutMs} ms:\n${details}`);
}

/** Waits until every replica's link to its master is up (its first sync is done). */
async function waitReplicasSynced(servers: Server[], view: NodeLine[], timeoutMs: number): Promise<void> {
  const replicaPorts = view.filter((n) => n.flags.includes('slave')).map((n) => n.port);
  const deadline = Date.now() + timeoutMs;
  for (const port of replicaPorts) {
    const replica = servers.find((s) => s.port === port);
    for (;;) {
      const info = await (replica ? replica.command(['INFO', 'replication']) : rawCommand(port, ['INFO', 'replication'])).catch(() => '');
      if (info.includes('master_link_status:up')) break;
      if (Date.now() > deadline) throw new Error(`replica :${port} did not finish its first sync within ${timeoutMs} ms`);
      await sleep(100);
    }
  }
}

/**
 * `tls`: every node TLS-only, with `tls-cluster yes` and `tls-replication yes` (see {@link ServerTls}).
 * `args`: extra redis-server arguments for every node (e.g. an ACL `--user` line; not a default-user password,
 * which the readiness checks and `redis-cli --cluster create` do not send).
 */
export async function startCluster(opts: { masters?: number; replicasPerMaster?: number; tls?: ServerTls; args?: string[] } = {}): Promise<RedisClusterHandle> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 0;
  if (masters < 3) throw new Error('startCluster: Redis Cluster needs at least 3 masters');
  // Replicas must finish their first sync before a failover can promote them: no 5 s diskless-sync delay.
  const clusterArgs = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--repl-diskless-sync-delay', '0',
    ...(opts.tls ? ['--tls-cluster', 'yes', '--tls-replication', 'yes'] : []), ...(opts.args ?? [])];
  const started = await Promise.allSettled(
    Array.from({ length: masters * (1 + replicas) }, () => launch(clusterArgs, undefined, true, opts.tls)));
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const stop = async () => { await Promise.all(servers.map((s) => s.stop())); };
  try {
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const t = opts.tls;
    const cliTls = t ? ['--tls', '--cacert', t.files.caCert, '--cert', t.files.client.cert, '--key', t.files.client.key] : [];
    await runRedisCli([...cliTls, '--cluster', 'create', ...servers.map((s) => `${HOST}:${s.port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes'], 30_000);
    const view = await waitClusterReady(servers, masters, 30_000);
    if (replicas > 0) await waitReplicasSynced(servers, view, 30_000);
    return {
      nodes: servers.map((s) => ({ host: HOST, port: s.port })),
      masters: view.filter((n) => n.flags.includes('master') && n.hasSlots).map((n) => ({ host: HOST, port: n.port })),
      servers,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
