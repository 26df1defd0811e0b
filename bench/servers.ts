// Throw-away Redis servers for the benchmarks: one standalone server and one
// 3-master Cluster on free loopback ports (never the system Redis on 6379).
import { startCluster, startStandalone } from '../test/helpers/redis_servers.js'
import type { HostPort } from '../test/helpers/redis_servers.js'

export interface BenchServers {
  /** redis:// URL of the standalone server. */
  redisUrl: string
  /** Every node of the 3-master Cluster (no replicas). */
  clusterNodes: HostPort[]
}

/** Starts the servers, runs `fn`, and always stops them (also when starting or `fn` fails). */
export async function withServers<T>(fn: (servers: BenchServers) => Promise<T>): Promise<T> {
  const [standalone, cluster] = await Promise.allSettled([startStandalone(), startCluster({ masters: 3, replicasPerMaster: 0 })])
  const stopAll = async () => {
    await Promise.allSettled([
      standalone.status === 'fulfilled' ? standalone.value.stop() : undefined,
      cluster.status === 'fulfilled' ? cluster.value.stop() : undefined,
    ])
  }
  try {
    if (standalone.status === 'rejected') throw standalone.reason
    if (cluster.status === 'rejected') throw cluster.reason
    return await fn({ redisUrl: standalone.value.url, clusterNodes: cluster.value.nodes })
  } finally {
    await stopAll()
  }
}
