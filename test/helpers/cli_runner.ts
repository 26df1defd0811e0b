import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * Runs `nearcache ...args` the way a user does: a child process
 * (`node --import tsx src/cli/main.ts ...`) with a clean environment, checked by
 * stdout, stderr and exit code.
 */

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const MAIN = join(REPO, 'src', 'cli', 'main.ts')
export const CLI_TIMEOUT = 120_000

export interface Result {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** The environment without npm's, vitest's, NEARCACHE_REDIS_URL and NEARCACHE_REDIS_PASSWORD. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k === 'NODE_OPTIONS' || k.startsWith('VITEST') || k === 'NEARCACHE_REDIS_URL' || k === 'NEARCACHE_REDIS_PASSWORD') continue
    env[k] = v
  }
  return env
}

/** Starts `nearcache ...args` (with `env` added to the clean environment); `done` resolves when it exits (killed after 60 s). */
export function start(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcessWithoutNullStreams; done: Promise<Result>; output: () => { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: REPO, env: { ...cleanEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
  child.stdin.end()
  const done = new Promise<Result>((res, rej) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      rej(new Error(`nearcache ${args.join(' ')} timed out.\nstdout:\n${stdout}\nstderr:\n${stderr}`))
    }, 60_000)
    child.on('error', rej)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      res({ code, signal, stdout, stderr })
    })
  })
  return { child, done, output: () => ({ stdout, stderr }) }
}

export const nearcache = (args: string[], env?: NodeJS.ProcessEnv): Promise<Result> => start(args, env).done

export function show(r: Result): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`
}

export async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
