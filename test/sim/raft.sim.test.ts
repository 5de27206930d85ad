// Properties of the Raft core under random fault schedules, checked after every event by
// RaftChecker, then a liveness phase. The seed is printed; replay a failure exactly with the
// line printed with it:
//   RAFTBUS_SEED=<seed> RAFTBUS_PATH=<path> npx vitest run test/sim/raft.sim.test.ts -t '<name>'
// and raise the number of schedules for a soak with RAFTBUS_SIM_RUNS_FACTOR=<n>.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkSchedules, simFactor, simTestTimeoutMs } from './property.js';
import { churnScenarioArbitrary, runScenario, scenarioArbitrary, type Scenario } from './raft-scenario.js';

function check(name: string, arbitrary: fc.Arbitrary<Scenario>, numRuns: number): { runs: number; acknowledged: number } {
  let runs = 0;
  let acknowledged = 0;
  checkSchedules({
    name,
    file: 'test/sim/raft.sim.test.ts',
    testName: testNames[name]!,
    arbitrary,
    numRuns,
    run: (scenario) => {
      acknowledged += runScenario(scenario).acknowledged;
      runs++;
    },
    traced: (scenario) => runScenario(scenario, { trace: true }),
  });
  return { runs, acknowledged };
}

const testNames: Record<string, string> = {
  'raft faults': 'keeps every safety property under crashes, partitions, loss, duplication and reordering',
  'raft membership': 'keeps them across membership changes, leadership transfer, snapshots and reads',
  'raft leader churn': 'keeps them when faults strike whoever leads, one entry per message (Figure 8 territory)',
};

describe('raft simulation', () => {
  it(testNames['raft faults']!, { timeout: simTestTimeoutMs }, () => {
    const { runs, acknowledged } = check('raft faults', scenarioArbitrary({ membership: false, stepsMax: 40 }), 1500 * simFactor);
    expect(runs).toBeGreaterThan(0);
    expect(acknowledged).toBeGreaterThan(runs); // the schedules made real progress, not only faults
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
