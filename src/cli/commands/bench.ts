import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { str, strings } from '../args.js'
import type { Command } from '../command.js'
import { UsageError } from '../errors.js'
import { note } from '../output.js'

/** The source checkout this command runs from: the package root, when it holds bench/run.ts and tsx resolves there. */
export function findBenchSuite(): { root: string; runner: string } | undefined {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }
      if (pkg.name === 'nearcache') {
        const runner = join(dir, 'bench', 'run.ts')
        if (!existsSync(runner)) return undefined
        try {
          createRequire(join(dir, 'package.json')).resolve('tsx')
        } catch {
          return undefined
        }
        return { root: dir, runner }
      }
    } catch {
      /* not here */
    }
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  return undefined
}

export const bench: Command = {
  name: 'bench',
  summary: "Run the repository's benchmark suite (from a source checkout)",
  usage: 'bench [--suite NAME]... [--redis URL]',
  help: `Runs the benchmark suite (bench/run.ts, as 'npm run bench' does) and prints its
tables; results are written to bench/results/. The suite ships with the source
repository, not with the npm package: from an installed package this command says
so and exits 1. Without --suite every suite runs; the Redis suites start their own
throw-away servers. --redis is passed on as NEARCACHE_BENCH_REDIS.

Options:
  --suite NAME   Run only this suite (repeatable), e.g. l1_hit, hash, get_batching

Example:
  nearcache bench --suite l1_hit --suite hash`,
  options: { suite: { type: 'string', multiple: true } },
  async run({ values }) {
    if (str(values.cluster) !== undefined) throw new UsageError('bench takes --redis URL, not --cluster', 'bench')
    const suites = strings(values.suite)
    if (suites.some((s) => !/^[a-z0-9_]+$/.test(s))) throw new UsageError('--suite takes a suite name such as l1_hit', 'bench')
    const found = findBenchSuite()
    if (!found) {
      note(
        'nearcache: the benchmark suite ships with the source repository, not with the npm package; clone the repository, npm install, and run `npm run bench` (or `nearcache bench`) there',
      )
      return 1
    }
    const env = { ...process.env }
    const redis = str(values.redis)
    if (redis !== undefined) env.NEARCACHE_BENCH_REDIS = redis
    const child = spawn(process.execPath, ['--import', 'tsx', found.runner, ...suites], { cwd: found.root, env, stdio: 'inherit' })
    const forward = () => child.kill('SIGINT')
    process.on('SIGINT', forward)
    try {
      return await new Promise<number>((resolve, reject) => {
        child.once('error', reject)
        child.once('close', (code) => resolve(code === 0 ? 0 : 1))
      })
    } finally {
      process.off('SIGINT', forward)
    }
  },
}
