/** Test-only: Redis topologies (Sentinels, a Cluster) started on loopback for the failover tests. */
export * from './topology.js';
