// Every fast-check property in the suite replays from RAFTBUS_SEED (and RAFTBUS_PATH) when set:
// fast-check prints both with any failure.
import fc from 'fast-check';

const seed = process.env.RAFTBUS_SEED;
if (seed !== undefined && /^-?\d+$/.test(seed)) {
  const path = process.env.RAFTBUS_PATH;
  fc.configureGlobal({ seed: Number(seed), ...(path !== undefined ? { path } : {}) });
}
