// What `nearcache status` reports, and how it prints it.
import { plural, printable, table } from './output.js'

/** Pings per node; the report gives their median. */
export const PINGS = 5
/** Namespaces listed in the text output (the JSON lists them all). */
export const TEXT_NAMESPACES = 50

export interface MemoryInfo {
  used: number
  usedHuman: string
  max: number
  maxHuman: string
  policy: string
}

export interface NodeStatus {
  addr: string
  id?: string
  role: string
  /** Slot ranges [first, last] (Cluster masters). */
  slots?: [number, number][]
  replicas: { addr: string; id?: string; state?: string }[]
  pingMs: number
  memory: MemoryInfo
  /** DBSIZE. */
  keys: number
}

export interface NamespaceCount {
  namespace: string
  keys: number
  tagEpochs: number
}

export interface StatusReport {
  target: string
  mode: 'standalone' | 'cluster'
  version: string
  pingMs: number
  cluster?: { state: string; slotsAssigned: number; masters: number; replicas: number }
  nodes: NodeStatus[]
  namespaces: {
    scannedKeys: number
    limit: number
    complete: boolean
    items: NamespaceCount[]
    /** Keys with no ':' (not nearcache entries). */
    otherKeys: number
  }
}

function slotText(slots: [number, number][] | undefined): string {
  if (!slots?.length) return '-'
  return slots.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',')
}

function memText(m: MemoryInfo): string {
  return `${m.usedHuman} used, maxmemory ${m.max === 0 ? 'none' : m.maxHuman} (${m.policy})`
}

/** The report as text; `focus` (the --namespace given) is listed even when it is not among the largest. */
export function formatStatus(r: StatusReport, focus?: string): string {
  const out: string[] = []
  const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(3)} ms` : 'unreachable')
  if (r.mode === 'standalone') {
    const n = r.nodes[0] as NodeStatus
    out.push(`Redis       ${r.target}`)
    out.push(`            standalone, Redis ${r.version}, role ${n.role}, ${plural(n.replicas.length, 'replica')}${n.replicas.length ? `: ${n.replicas.map((x) => `${x.addr} (${x.state})`).join(', ')}` : ''}`)
    out.push(`Ping        ${ms(r.pingMs)} (median of ${PINGS})`)
    out.push(`Memory      ${memText(n.memory)}`)
    out.push(`Keys        ${n.keys} (DBSIZE)`)
  } else {
    const c = r.cluster as NonNullable<StatusReport['cluster']>
    out.push(`Redis       ${r.target}`)
    out.push(`            Redis Cluster, state ${c.state}, ${c.slotsAssigned}/16384 slots, ${plural(c.masters, 'master')}, ${plural(c.replicas, 'replica')}, Redis ${r.version}`)
    out.push(`Ping        ${ms(r.pingMs)} (slowest master, median of ${PINGS} each)`)
    out.push('Masters')
    const rows = [['ADDRESS', 'ID', 'SLOTS', 'PING', 'MEMORY', 'MAXMEMORY', 'KEYS', 'REPLICAS']]
    for (const n of r.nodes) {
      rows.push([
        n.addr,
        (n.id ?? '').slice(0, 8),
        slotText(n.slots),
        ms(n.pingMs),
        n.memory.usedHuman,
        n.memory.max === 0 ? 'none' : `${n.memory.maxHuman} (${n.memory.policy})`,
        Number.isFinite(n.keys) ? String(n.keys) : '?',
        n.replicas.length ? n.replicas.map((x) => `${x.addr} (${x.state})`).join(', ') : '-',
      ])
    }
    out.push(table(rows))
  }
  const ns = r.namespaces
  const where = r.mode === 'cluster' ? ` on ${plural(r.nodes.length, 'master')}` : ''
  out.push(
    `Namespaces  ${ns.complete ? `scanned all ${ns.scannedKeys} keys${where}` : `scan stopped after ${ns.limit} keys${where} (--scan-limit); counts are partial`}`,
  )
  if (ns.items.length === 0 && ns.otherKeys === 0) out.push('  (none)')
  else {
    const rows = [['NAMESPACE', 'KEYS', 'TAG EPOCHS']]
    const shown = ns.items.slice(0, TEXT_NAMESPACES)
    const focused = ns.items.find((i) => i.namespace === focus)
    if (focused && !shown.includes(focused)) shown.push(focused)
    // Namespaces here are whatever prefixes the keys in Redis have: escaped before they reach a terminal.
    for (const i of shown) rows.push([printable(i.namespace), String(i.keys), String(i.tagEpochs)])
    if (ns.otherKeys > 0) rows.push(["(keys without ':')", String(ns.otherKeys), ''])
    out.push(table(rows))
    if (ns.items.length > shown.length) out.push(`  ... and ${ns.items.length - shown.length} more (--json lists them all)`)
  }
  return out.join('\n')
}
