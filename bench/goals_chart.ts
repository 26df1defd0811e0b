// The goals chart (bench/results/goals.svg) and the number formats of the goals table.
import os from 'node:os'
import type { GoalRow, GoalsResult } from './goals_common.js'

export function fmt(n: number | null, unit: string): string {
  if (n === null) return '—'
  if (unit === 'µs' || unit === 'ms') return `${n.toFixed(n < 10 ? 3 : 1)} ${unit}`
  const s = n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2)
  return unit ? `${s} ${unit}` : s
}

export function ratioText(r: number | null): string {
  if (r === null) return '—'
  return r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)
}

function machine() {
  const cpus = os.cpus()
  return { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, node: process.version }
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/**
 * A horizontal bar per row, grouped under its goal: the ratio, the goal as a black
 * vertical line; green when met, red when missed, grey when there is no goal.
 */
export function svg(result: GoalsResult, date: string): string {
  const { rows } = result
  const m = machine()
  const W = 1100
  const labelW = 400
  const plotX = labelW + 12
  const plotW = W - plotX - 70
  const barH = 16
  const rowH = 24
  const headH = 26
  const top = 96
  const groups: { goal: string; rows: GoalRow[] }[] = []
  for (const r of rows) {
    const last = groups[groups.length - 1]
    if (last && last.goal === r.goal) last.rows.push(r)
    else groups.push({ goal: r.goal, rows: [r] })
  }
  const plotH = groups.length * headH + rows.length * rowH
  const H = top + plotH + 56
  const max = Math.max(1, ...rows.flatMap((r) => [r.ratio ?? 0, r.goalRatio ?? 0])) * 1.08
  const x = (v: number) => plotX + (Math.min(v, max) / max) * plotW
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="12" y="26" font-size="17" font-weight="bold">${esc(`nearcache throughput goals — ${date.slice(0, 16).replace('T', ' ')} UTC`)}</text>`,
    `<text x="12" y="46" fill="#333">${esc(`${m.cpu}, ${m.cores} cores, Node ${m.node}, ${process.platform} ${os.release()} · load average at start ${result.loadAverage.start.map((n) => n.toFixed(2)).join(' ')}`)}</text>`,
    `<text x="12" y="64" fill="#555">${esc('ratio = ours / peer (latency and CPU rows: peer / ours), higher is better; peers measured in the same run and process')}</text>`,
  ]
  // Legend.
  const legend: [string, string][] = [['#2e9e44', 'goal met'], ['#d0342c', 'goal missed'], ['#9e9e9e', 'no goal set (reported)']]
  legend.forEach(([color, text], i) => {
    const lx = 12 + i * 190
    out.push(`<rect x="${lx}" y="74" width="12" height="12" fill="${color}"/><text x="${lx + 18}" y="85">${esc(text)}</text>`)
  })
  out.push(`<line x1="${12 + 3 * 190}" y1="73" x2="${12 + 3 * 190}" y2="87" stroke="#000" stroke-width="2"/><text x="${18 + 3 * 190}" y="85">goal ratio</text>`)
  // Gridlines.
  const step = max > 24 ? 5 : max > 12 ? 2 : max > 3 ? 1 : 0.5
  for (let v = 0; v <= max; v += step) {
    out.push(`<line x1="${x(v)}" y1="${top}" x2="${x(v)}" y2="${top + plotH}" stroke="#e6e6e6"/>`)
    out.push(`<text x="${x(v)}" y="${top + plotH + 16}" text-anchor="middle" fill="#666">${v}</text>`)
  }
  out.push(`<line x1="${x(1)}" y1="${top}" x2="${x(1)}" y2="${top + plotH}" stroke="#bbbbbb" stroke-dasharray="4 3"/>`)
  out.push(`<text x="${plotX + plotW / 2}" y="${top + plotH + 36}" text-anchor="middle" fill="#444">ratio (dashed: 1 = parity)</text>`)
  let y = top
  for (const g of groups) {
    out.push(`<text x="12" y="${y + 18}" font-weight="bold">${esc(g.goal)}</text>`)
    y += headH
    for (const r of g.rows) {
      const mid = y + barH / 2 + 4
      const label = r.scenario.length > 62 ? `${r.scenario.slice(0, 61)}…` : r.scenario
      out.push(`<text x="${labelW}" y="${mid}" text-anchor="end">${esc(label)}</text>`)
      if (r.ratio === null) {
        out.push(`<text x="${plotX + 4}" y="${mid}" fill="#888" font-style="italic">not measured</text>`)
      } else {
        const color = r.met === null ? '#9e9e9e' : r.met ? '#2e9e44' : '#d0342c'
        out.push(`<rect x="${plotX}" y="${y}" width="${Math.max(1.5, x(r.ratio) - plotX)}" height="${barH}" fill="${color}"><title>${esc(`${r.scenario}: ours ${fmt(r.ours, r.unit)}, peer ${fmt(r.peer, r.unit)}`)}</title></rect>`)
        out.push(`<text x="${x(r.ratio) + 4}" y="${mid}">${ratioText(r.ratio)}</text>`)
        if (r.goalRatio !== null) {
          out.push(`<line x1="${x(r.goalRatio)}" y1="${y - 3}" x2="${x(r.goalRatio)}" y2="${y + barH + 3}" stroke="#000" stroke-width="2"/>`)
          out.push(`<text x="${x(r.goalRatio) + 4}" y="${mid}" font-size="10" fill="#000">${r.ratio < r.goalRatio * 0.8 || r.ratio > r.goalRatio * 1.25 ? `goal ${r.goalRatio}` : ''}</text>`)
        }
      }
      y += rowH
    }
  }
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

