// Turns tinybench tasks into figures, prints comparison tables, writes JSON results.
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Task } from 'tinybench'

/** One task's figures. `opsPerSec` is the median (p50) of the per-iteration throughput. */
export interface TaskFigure {
  scenario: string
  task: string
  /** Operations per task iteration (e.g. 1000 gets), so ops/s = iterations/s × this. */
  opsPerIteration: number
  /** Median operations per second. */
  opsPerSec: number
  /** Mean operations per second (for reference; medians decide). */
  meanOpsPerSec: number
  /** Median latency of one iteration, in ms. */
  iterationP50Ms: number
  /** Relative margin of error of the mean latency, in percent. */
  rme: number
  samples: number
}

/** Ours vs a peer (another setting or another library), by median ops/s. */
export interface Comparison {
  scenario: string
  ours: string
  peer: string
  oursOpsPerSec: number
  peerOpsPerSec: number
  /** oursOpsPerSec / peerOpsPerSec: above 1 means ours is faster. */
  ratio: number
}

export interface SuiteResult {
  suite: string
  tasks: TaskFigure[]
  rows: Comparison[]
}

/** Reads a finished task's figures; throws if it errored or did not complete. */
export function figure(scenario: string, task: Task, opsPerIteration: number): TaskFigure {
  const r = task.result
  if (r.state === 'errored') throw new Error(`${scenario} / ${task.name} failed: ${r.error.message}`, { cause: r.error })
  if (r.state !== 'completed') throw new Error(`${scenario} / ${task.name} did not complete (state: ${r.state})`)
  return {
    scenario,
    task: task.name,
    opsPerIteration,
    opsPerSec: r.throughput.p50 * opsPerIteration,
    meanOpsPerSec: r.throughput.mean * opsPerIteration,
    iterationP50Ms: r.latency.p50,
    rme: r.latency.rme,
    samples: r.latency.samplesCount,
  }
}

export function compare(scenario: string, ours: TaskFigure, peer: TaskFigure): Comparison {
  return {
    scenario,
    ours: ours.task,
    peer: peer.task,
    oursOpsPerSec: ours.opsPerSec,
    peerOpsPerSec: peer.opsPerSec,
    ratio: ours.opsPerSec / peer.opsPerSec,
  }
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')

export function printTasks(tasks: TaskFigure[]): void {
  console.table(tasks.map((t) => ({
    scenario: t.scenario,
    task: t.task,
    'median ops/s': int(t.opsPerSec),
    'mean ops/s': int(t.meanOpsPerSec),
    'iter p50 ms': t.iterationP50Ms.toFixed(2),
    'rme %': t.rme.toFixed(1),
    samples: t.samples,
  })))
}

export function printComparisons(rows: Comparison[]): void {
  console.table(rows.map((r) => ({
    scenario: r.scenario,
    ours: r.ours,
    peer: r.peer,
    'ours ops/s': int(r.oursOpsPerSec),
    'peer ops/s': int(r.peerOpsPerSec),
    'ours/peer': r.ratio.toFixed(2),
  })))
}

const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results')

/** Writes bench/results/<suite>.json with the machine description; returns the path. */
export async function writeResults(result: SuiteResult, settings: Record<string, unknown> = {}): Promise<string> {
  const cpus = os.cpus()
  const doc = {
    suite: result.suite,
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, node: process.version, platform: `${process.platform} ${os.release()}` },
    settings,
    tasks: result.tasks,
    rows: result.rows,
  }
  await mkdir(RESULTS_DIR, { recursive: true })
  const file = path.join(RESULTS_DIR, `${result.suite}.json`)
  await writeFile(file, `${JSON.stringify(doc, null, 2)}\n`)
  return file
}

/** Prints a suite's tables and writes its JSON. */
export async function report(result: SuiteResult, settings?: Record<string, unknown>): Promise<void> {
  console.log(`\n== ${result.suite} ==`)
  printTasks(result.tasks)
  printComparisons(result.rows)
  console.log(`results: ${path.relative(process.cwd(), await writeResults(result, settings))}`)
}
