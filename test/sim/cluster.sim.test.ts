// The whole cluster in the simulator: see cluster-scenario.ts for what one schedule does and
// cluster-simulation.ts for how nodes, disks and networks are simulated. The seed is printed;
// replay a failure exactly with
//   RAFTBUS_SEED=<seed> RAFTBUS_PATH=<path> npx vitest run test/sim/cluster.sim.test.ts
// (the failing schedule and its trace, node logs included, are written to .sim-failures/), and
// raise the number of schedules for a soak with RAFTBUS_SIM_RUNS_FACTOR=<n>.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runScenario, scenarioArbitrary } from './cluster-scenario.js';
import { checkAsyncSchedules, simFactor, simPath, simSeed, simTestTimeoutMs } from './property.js';

const propertyName = 'no acknowledged record is lost, duplicated or reordered, and replicas converge, under crashes, torn writes, corruption of a minority, partitions, pauses and lossy links';

interface Totals {
  runs: number;
  acknowledged: number;
  consumed: number;
  commits: number;
  crashes: number;
  corruptions: number;
  pauses: number;
  events: number;
  virtualMs: number;
}

describe('whole-cluster simulation', () => {
  it('replays a schedule exactly: the same trace (node logs included) and the same history', { timeout: 60_000 }, async () => {
    const [scenario] = fc.sample(scenarioArbitrary({ faultsMax: 8 }).filter((candidate) => candidate.faults.length >= 3), { seed: simSeed, numRuns: 1 });
    const first = await runScenario(scenario!, { trace: true });
    const second = await runScenario(scenario!, { trace: true });
    expect(first.sim.trace.length).toBeGreaterThan(100);
    expect(second.sim.trace).toEqual(first.sim.trace);
    expect(second.workload.events).toEqual(first.workload.events);
  });

  it(propertyName, { timeout: simTestTimeoutMs * 3 }, async () => {
    const totals: Totals = { runs: 0, acknowledged: 0, consumed: 0, commits: 0, crashes: 0, corruptions: 0, pauses: 0, events: 0, virtualMs: 0 };
    const startedAt = performance.now();
    const runs = Number(process.env.RAFTBUS_CLUSTER_SIM_RUNS ?? 500) * simFactor;
    await checkAsyncSchedules({
      name: 'cluster',
      file: 'test/sim/cluster.sim.test.ts',
      testName: propertyName,
      arbitrary: scenarioArbitrary({ faultsMax: 8 }),
      numRuns: runs,
      run: async (scenario) => {
        const { sim, workload } = await runScenario(scenario);
        totals.runs++;
        totals.acknowledged += workload.counts.acknowledged;
        totals.consumed += workload.counts.consumed;
        totals.commits += workload.counts.commits;
        totals.crashes += sim.counts.crashes;
        totals.corruptions += sim.counts.corruptions;
        totals.pauses += sim.counts.pauses;
        totals.events += sim.counts.events;
        totals.virtualMs += sim.now;
      },
      traced: async (scenario) => {
        await runScenario(scenario, { trace: true });
      },
    });
    const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
    console.log(`cluster: ${totals.runs} schedules in ${seconds} s (${(totals.virtualMs / 1000).toFixed(0)} s virtual, ${totals.events} events): ${totals.acknowledged} records acknowledged, ${totals.consumed} consumed, ${totals.commits} commits acknowledged, ${totals.crashes} crashes, ${totals.corruptions} files corrupted, ${totals.pauses} pauses`);
    expect(totals.runs).toBeGreaterThan(0);
    if (simPath === undefined) {
      expect(totals.acknowledged).toBeGreaterThan(10 * totals.runs);
      expect(totals.crashes).toBeGreaterThan(0);
    }
  });
});
