// vitest globalSetup of the `integration` project (vitest.config.ts): one
// shared standalone Redis and one 3-master Redis Cluster for the whole run.
// Tests read them with inject('redisUrl') and inject('clusterNodes'). The
// `unit` project has no global setup and starts no Redis. Keep teardown
// silent: the summary reporter's line must stay the last line of output.
import type { TestProject } from 'vitest/node';
import { startCluster, startStandalone, type RedisClusterHandle, type RedisServerHandle } from './helpers/redis_servers.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const [standalone, cluster] = await Promise.allSettled([startStandalone(), startCluster({ masters: 3 })]);
  const handles: (RedisServerHandle | RedisClusterHandle)[] = [];
  for (const r of [standalone, cluster]) if (r.status === 'fulfilled') handles.push(r.value);
  const teardown = async () => { await Promise.all(handles.map((h) => h.stop())); };

  if (standalone.status === 'rejected' || cluster.status === 'rejected') {
    await teardown();
    throw standalone.status === 'rejected' ? standalone.reason : (cluster as PromiseRejectedResult).reason;
  }
  project.provide('redisUrl', standalone.value.url);
  project.provide('clusterNodes', cluster.value.nodes);
  return teardown;
}
