// Values provided by test/global_setup.ts; read them in tests with inject('redisUrl') etc.
export {};

declare module 'vitest' {
  export interface ProvidedContext {
    /** redis://127.0.0.1:PORT of the shared standalone test server. */
    redisUrl: string;
    /** All nodes of the shared 3-master test cluster (seed list for ioredis Cluster). */
    clusterNodes: { host: string; port: number }[];
  }
}
