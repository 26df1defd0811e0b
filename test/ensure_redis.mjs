#!/usr/bin/env node
// Makes sure redis-server and redis-cli (used by the test harness) are
// installed. Installs Debian's redis-server package when running as root;
// otherwise explains what to do. Never starts a server.
import { spawnSync } from 'node:child_process';

const APT_INSTALL = 'DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server';

function redisVersion() {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return (r.stdout.match(/v=(\S+)/) ?? [])[1] ?? r.stdout.trim();
}

function hasRedisCli() {
  const r = spawnSync('redis-cli', ['--version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

function missing() {
  const m = [];
  if (redisVersion() === null) m.push('redis-server');
  if (!hasRedisCli()) m.push('redis-cli');
  return m;
}

function run(cmd, args, env = process.env) {
  console.log(`ensure_redis: running ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env });
  if (r.error || r.status !== 0) {
    console.error(`ensure_redis: '${cmd} ${args.join(' ')}' failed (${r.error?.message ?? `exit ${r.status}`})`);
    process.exit(1);
  }
}

let lacking = missing();
if (lacking.length > 0) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.error(`ensure_redis: ${lacking.join(' and ')} not found on PATH; the tests need them.`);
    console.error(`Install them as root with:\n  apt-get update && ${APT_INSTALL}`);
    process.exit(1);
  }
  console.log(`ensure_redis: ${lacking.join(' and ')} not found; installing Debian's redis-server package`);
  run('apt-get', ['update']);
  run('apt-get', ['install', '-y', 'redis-server'], { ...process.env, DEBIAN_FRONTEND: 'noninteractive' });
  lacking = missing();
  if (lacking.length > 0) {
    console.error(`ensure_redis: still missing after install: ${lacking.join(', ')}`);
    process.exit(1);
  }
}

const which = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
console.log(`ensure_redis: using redis-server ${redisVersion()} (${which || 'redis-server'})`);
