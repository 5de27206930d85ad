// The benchmarks and tests use the same free-port finder as startCluster.
export { freePort } from '../../src/cluster/free-port.js';
