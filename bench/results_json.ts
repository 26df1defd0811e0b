// JSON results for suites whose figures are not (only) tinybench tasks (hit ratios,
// hash spread): the same document shape as report.ts's writeResults (suite, date,
// machine, settings), with the suite's own sections after it.
import { mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results')

/** Writes bench/results/<suite>.json; answers its path relative to the working directory. */
export async function writeJson(suite: string, settings: Record<string, unknown>, body: Record<string, unknown>): Promise<string> {
  const cpus = os.cpus()
  const doc = {
    suite,
    date: new Date().toISOString(),
    machine: { cpu: cpus[0]?.model ?? 'unknown', cores: cpus.length, node: process.version, platform: `${process.platform} ${os.release()}` },
    settings,
    ...body,
  }
  await mkdir(RESULTS_DIR, { recursive: true })
  const file = path.join(RESULTS_DIR, `${suite}.json`)
  await writeFile(file, `${JSON.stringify(doc, null, 2)}\n`)
  return path.relative(process.cwd(), file)
}
