// Checks the test harness itself: the servers started by test/global_setup.ts
// and the startStandalone() helper (kill/restart/stop).
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startStandalone } from '../helpers/redis_servers.js';

const PREFIX = 'harness:';

describe('standalone server from globalSetup', () => {
  let client: Redis;

  beforeAll(() => {
    client = new Redis(inject('redisUrl'), { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    const keys = await client.keys(`${PREFIX}*`);
    if (keys.length > 0) await client.del(...keys);
    await client.quit();
  });

  it('is on a loopback port other than 6379', () => {
    const url = new URL(inject('redisUrl'));
    expect(url.hostname).toBe('127.0.0.1');
    expect(Number(url.port)).not.toBe(6379);
  });

  it('answers PING, SET and GET', async () => {
    expect(await client.ping()).toBe('PONG');
    expect(await client.set(`${PREFIX}k1`, 'v1')).toBe('OK');
    expect(await client.get(`${PREFIX}k1`)).toBe('v1');
  });
});

describe('cluster from globalSetup', () => {
  const nodes = inject('clusterNodes');
  let cluster: Cluster;
  const keys = Array.from({ length: 50 }, (_, i) => `${PREFIX}ck:${i}`);

  beforeAll(() => {
    cluster = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  });
  afterAll(async () => {
    await Promise.all(keys.map((k) => cluster.del(k)));
    await cluster.quit();
  });

  it('has 3 nodes, all reporting cluster_state:ok', async () => {
    expect(nodes).toHaveLength(3);
    for (const node of nodes) {
      expect(node.host).toBe('127.0.0.1');
      const client = new Redis({ host: node.host, port: node.port, maxRetriesPerRequest: 1 });
      try {
        const info = await client.cluster('INFO');
        expect(info).toContain('cluster_state:ok');
        expect(info).toContain('cluster_slots_assigned:16384');
        expect(info).toContain('cluster_known_nodes:3');
      } finally {
        await client.quit();
      }
    }
  });

  it('SET/GET of 50 keys spreads them over at least 2 masters', async () => {
    for (const k of keys) await cluster.set(k, `value-of-${k}`);
    for (const k of keys) expect(await cluster.get(k)).toBe(`value-of-${k}`);

    // Map each key's slot to the master owning it, per CLUSTER SLOTS.
    const seed = nodes[0]!;
    const client = new Redis({ host: seed.host, port: seed.port, maxRetriesPerRequest: 1 });
    try {
      const slots = await client.cluster('SLOTS');
      const owners = new Set<number>();
      for (const k of keys) {
        const slot = Number(await client.cluster('KEYSLOT', k));
        const master = slots.find(([from, to]) => slot >= from && slot <= to)?.[2];
        expect(master, `slot ${slot} of ${k} has a master`).toBeDefined();
        owners.add(master![1]);
      }
      expect(owners.size).toBeGreaterThanOrEqual(2);
    } finally {
      await client.quit();
    }
  });
});

describe('startStandalone() handle', () => {
  it('can be killed, restarted on the same port, and stopped', async () => {
    const server = await startStandalone();
    const client = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => { /* expected while the server is down */ });
    try {
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
      await client.connect();
      expect(await client.ping()).toBe('PONG');
      expect(await client.debug('SLEEP', '0')).toBe('OK'); // --enable-debug-command yes

      server.kill();
      await server.restart();
      const again = new Redis(server.url, { maxRetriesPerRequest: 1 });
      try {
        expect(await again.ping()).toBe('PONG');
      } finally {
        again.disconnect();
      }
    } finally {
      client.disconnect();
      await server.stop();
    }
    const probe = new Redis(server.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => { /* expected: server is gone */ });
    await expect(probe.connect()).rejects.toThrow();
    probe.disconnect();
  });
});
