// Properties of the Raft core under random fault schedules, checked after every event by
// RaftChecker, then a liveness phase. The seed is printed; replay a failure exactly with the
// line printed with it:
//   RAFTBUS_SEED=<seed> RAFTBUS_PATH=<path> npx vitest run test/sim/raft.sim.test.ts -t '<name>'
// and raise the number of schedules for a soak with RAFTBUS_SIM_RUNS_FACTOR=<n>.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSchedules, simFactor, simTestTimeoutMs } from './property.js';
import { churnScenarioArbitrary, runScenario, scenarioArbitrary, type Scenario } from './raft-scenario.js';

function check(name: string, arbitrary: fc.Arbitrary<Scenario>, numRuns: number): { runs: number; acknowledged: number; tailsLost: { bounded: number; unbounded: number } } {
  let runs = 0;
  let acknowledged = 0;
  const tailsLost = { bounded: 0, unbounded: 0 };
  checkSchedules({
    name,
    file: 'test/sim/raft.sim.test.ts',
    testName: testNames[name]!,
    arbitrary,
    numRuns,
    run: (scenario) => {
      const outcome = runScenario(scenario);
      acknowledged += outcome.acknowledged;
      tailsLost.bounded += outcome.simulation.tailsLost.bounded;
      tailsLost.unbounded += outcome.simulation.tailsLost.unbounded;
      runs++;
    },
    traced: (scenario) => runScenario(scenario, { trace: true }),
  });
  return { runs, acknowledged, tailsLost };
}

const testNames: Record<string, string> = {
  'raft faults': 'keeps every safety property under crashes, partitions, loss, duplication and reordering, and disks that lose their last entries',
  'raft membership': 'keeps them across membership changes, leadership transfer, snapshots and reads',
  'raft leader churn': 'keeps them when faults strike whoever leads, one entry per message (Figure 8 territory)',
};

describe('raft simulation', () => {
  it(testNames['raft faults']!, { timeout: simTestTimeoutMs }, () => {
    const { runs, acknowledged, tailsLost } = check('raft faults', scenarioArbitrary({ membership: false, stepsMax: 40 }), 1500 * simFactor);
    console.log(`raft faults: ${runs} schedules, ${acknowledged} proposals acknowledged, disks lost their last entries ${tailsLost.bounded} times with a known bound and ${tailsLost.unbounded} with none`);
    expect(runs).toBeGreaterThan(0);
    expect(acknowledged).toBeGreaterThan(runs); // the schedules made real progress, not only faults
    expect(Math.min(tailsLost.bounded, tailsLost.unbounded)).toBeGreaterThan(0);
  });

  it(testNames['raft membership']!, { timeout: simTestTimeoutMs }, () => {
    const { runs, acknowledged } = check('raft membership', scenarioArbitrary({ membership: true, stepsMax: 40 }), 500 * simFactor);
    expect(runs).toBeGreaterThan(0);
    expect(acknowledged).toBeGreaterThan(runs);
  });

  it(testNames['raft leader churn']!, { timeout: simTestTimeoutMs }, () => {
    const { runs } = check('raft leader churn', churnScenarioArbitrary({ stepsMax: 60 }), 500 * simFactor);
    expect(runs).toBeGreaterThan(0);
  });
});
