import type { Redis } from 'ioredis'
import { intOption } from '../args.js'
import type { Command } from '../command.js'
import { connect, disconnect, isCluster, masters, nodeAddress } from '../connect.js'
import type { Client } from '../connect.js'
import { out, outJson } from '../output.js'
import { scanNode } from '../../l2/scan.js'
import { formatStatus, PINGS, TEXT_NAMESPACES } from '../status_format.js'
import type { MemoryInfo, NamespaceCount, NodeStatus, StatusReport } from '../status_format.js'

export { formatStatus } from '../status_format.js'
export type { MemoryInfo, NamespaceCount, NodeStatus, StatusReport } from '../status_format.js'
import { TAG_EPOCH_PREFIX, tagKey } from '../../keys.js'

const DEFAULT_SCAN_LIMIT = 100_000

/** INFO text as a field map. */
export function parseInfo(text: string): Map<string, string> {
  const m = new Map<string, string>()
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':')
    if (i > 0 && !line.startsWith('#')) m.set(line.slice(0, i), line.slice(i + 1).trim())
  }
  return m
}

export interface ClusterNodeLine {
  id: string
  addr: string
  flags: string[]
  masterId: string | undefined
  linkState: string
  slots: [number, number][]
}

/** CLUSTER NODES text (slots being migrated or imported, in brackets, are left out). */
export function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ')
      const slots: [number, number][] = []
      for (const s of f.slice(8)) {
        if (s.startsWith('[')) continue
        const [a, b] = s.split('-')
        slots.push([Number(a), Number(b ?? a)])
      }
      slots.sort((x, y) => x[0] - y[0])
      return {
        id: f[0] ?? '',
        addr: (f[1] ?? '').split('@')[0] ?? '',
        flags: (f[2] ?? '').split(','),
        masterId: f[3] && f[3] !== '-' ? f[3] : undefined,
        linkState: f[7] ?? '',
        slots,
      }
    })
}

function memoryOf(info: Map<string, string>): MemoryInfo {
  return {
    used: Number(info.get('used_memory') ?? 0),
    usedHuman: info.get('used_memory_human') ?? '?',
    max: Number(info.get('maxmemory') ?? 0),
    maxHuman: info.get('maxmemory_human') ?? '?',
    policy: info.get('maxmemory_policy') ?? '?',
  }
}

async function pingMs(node: Redis): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < PINGS; i++) {
    const t = performance.now()
    await node.ping()
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  return Math.round((times[Math.floor(times.length / 2)] as number) * 1000) / 1000
}

/** Counts keys per top-level prefix (before the first ':'); tag epochs count for their namespace. */
export async function countNamespaces(nodes: Redis[], limit: number): Promise<StatusReport['namespaces']> {
  const counts = new Map<string, NamespaceCount>()
  const get = (ns: string) => {
    let c = counts.get(ns)
    if (!c) counts.set(ns, (c = { namespace: ns, keys: 0, tagEpochs: 0 }))
    return c
  }
  let scanned = 0
  let otherKeys = 0
  let complete = true
  outer: for (const node of nodes) {
    for await (const batch of scanNode(node)) {
      for (const key of batch) {
        if (scanned >= limit) {
          complete = false
          break outer
        }
        scanned++
        if (key.startsWith(TAG_EPOCH_PREFIX)) {
          const ns = key.slice(TAG_EPOCH_PREFIX.length).split('|')[0] as string
          get(ns.split(':')[0] as string).tagEpochs++
        } else {
          const i = key.indexOf(':')
          if (i > 0) get(key.slice(0, i)).keys++
          else otherKeys++
        }
      }
    }
  }
  const items = [...counts.values()].sort((a, b) => b.keys - a.keys || b.tagEpochs - a.tagEpochs || a.namespace.localeCompare(b.namespace))
  return { scannedKeys: scanned, limit, complete, items, otherKeys }
}

async function nodeStatus(node: Redis): Promise<Omit<NodeStatus, 'replicas' | 'role'> & { info: Map<string, string> }> {
  const ping = await pingMs(node)
  const [server, memory, replication, dbsize] = await Promise.all([
    node.info('server'),
    node.info('memory'),
    node.info('replication'),
    node.dbsize(),
  ])
  const info = new Map([...parseInfo(server), ...parseInfo(memory), ...parseInfo(replication)])
  return { addr: nodeAddress(node), pingMs: ping, memory: memoryOf(info), keys: dbsize, info }
}

export async function collectStatus(client: Client, label: string, limit: number): Promise<StatusReport> {
  const nodes = masters(client)
  if (!isCluster(client)) {
    const node = nodes[0] as Redis
    const { info, ...s } = await nodeStatus(node)
    const replicas: NodeStatus['replicas'] = []
    for (const [k, v] of info) {
      if (!/^slave\d+$/.test(k)) continue
      const f = parseInfo(v.replace(/,/g, '\n').replace(/=/g, ':'))
      replicas.push({ addr: `${f.get('ip')}:${f.get('port')}`, state: f.get('state') })
    }
    return {
      target: label,
      mode: 'standalone',
      version: info.get('redis_version') ?? '?',
      pingMs: s.pingMs,
      nodes: [{ addr: s.addr, role: info.get('role') ?? 'master', replicas, pingMs: s.pingMs, memory: s.memory, keys: s.keys }],
      namespaces: await countNamespaces(nodes, limit),
    }
  }
  const first = nodes[0] as Redis
  const [clusterInfo, nodesText] = await Promise.all([
    first.call('CLUSTER', 'INFO') as Promise<string>,
    first.call('CLUSTER', 'NODES') as Promise<string>,
  ])
  const ci = parseInfo(clusterInfo)
  const lines = parseClusterNodes(nodesText)
  const byAddr = new Map(nodes.map((n) => [nodeAddress(n), n]))
  const masterLines = lines.filter((l) => l.flags.includes('master') && l.slots.length > 0)
  masterLines.sort((a, b) => (a.slots[0]?.[0] ?? 0) - (b.slots[0]?.[0] ?? 0))
  const replicaLines = lines.filter((l) => l.flags.includes('slave') || l.flags.includes('replica'))
  const statuses: NodeStatus[] = []
  let version = '?'
  for (const m of masterLines) {
    const node = byAddr.get(m.addr)
    const replicas = replicaLines
      .filter((r) => r.masterId === m.id)
      .map((r) => ({ addr: r.addr, id: r.id, state: r.flags.some((f) => f.startsWith('fail')) ? 'fail' : r.linkState }))
    if (!node) {
      statuses.push({ addr: m.addr, id: m.id, role: 'master', slots: m.slots, replicas, pingMs: NaN, memory: memoryOf(new Map()), keys: NaN })
      continue
    }
    const { info, ...s } = await nodeStatus(node)
    if (version === '?') version = info.get('redis_version') ?? '?'
    statuses.push({ addr: s.addr, id: m.id, role: 'master', slots: m.slots, replicas, pingMs: s.pingMs, memory: s.memory, keys: s.keys })
  }
  const pings = statuses.map((s) => s.pingMs).filter((p) => Number.isFinite(p))
  return {
    target: label,
    mode: 'cluster',
    version,
    pingMs: pings.length ? Math.max(...pings) : NaN,
    cluster: {
      state: ci.get('cluster_state') ?? '?',
      slotsAssigned: Number(ci.get('cluster_slots_assigned') ?? 0),
      masters: masterLines.length,
      replicas: replicaLines.length,
    },
    nodes: statuses,
    namespaces: await countNamespaces(nodes, limit),
  }
}

export const status: Command = {
  name: 'status',
  summary: 'Connection, topology, memory and the namespaces in Redis',
  usage: 'status [--scan-limit N] [--json]',
  help: `Connects and shows: the ping latency; standalone or Cluster topology (masters with
their slot ranges and replicas, from CLUSTER NODES); memory per master (INFO
memory: used_memory_human, maxmemory, policy); and the namespaces present, found by
SCANning every master and counting keys per top-level prefix (the part before the
first ':'; a namespace's tag epochs '${tagKey('NS', '...')}' count under NS).

Options:
  --scan-limit N   Stop the namespace scan after N keys (default ${DEFAULT_SCAN_LIMIT}); the output
                   says when it stopped early
  --namespace NS   Always list NS (the text lists the ${TEXT_NAMESPACES} largest namespaces)`,
  options: { 'scan-limit': { type: 'string' } },
  async run({ globals, values }) {
    const limit = intOption(values['scan-limit'], 'scan-limit', DEFAULT_SCAN_LIMIT, 1, Number.MAX_SAFE_INTEGER, 'status')
    let client: Client | undefined
    try {
      client = await connect(globals.target)
      const report = await collectStatus(client, globals.target.label, limit)
      await (globals.json ? outJson(report) : out(formatStatus(report, globals.namespaceGiven ? globals.namespace : undefined)))
      return 0
    } finally {
      await disconnect(client)
    }
  },
}
