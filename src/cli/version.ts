import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The version in nearcache's package.json (found above this file, from src/ or dist/src/). */
export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === 'nearcache' && pkg.version) return pkg.version
    } catch {
      /* not here */
    }
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  return 'unknown'
}
