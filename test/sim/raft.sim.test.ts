// Properties of the Raft core under random fault schedules, checked after every event by
// RaftChecker, then a liveness phase. The seed is printed; replay a failure exactly with the
// line printed with it:
//   RAFTBUS_SEED=<seed> RAFTBUS_PATH=<path> npx vitest run test/sim/raft.sim.test.ts -t '<name>'
// and raise the number of schedules for a soak with RAFTBUS_SIM_RUNS_FACTOR=<n>.
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ScenarioFailure, churnScenarioArbitrary, runScenario, scenarioArbitrary, type Scenario } from './raft-scenario.js';

const factor = Number(process.env.RAFTBUS_SIM_RUNS_FACTOR ?? '1');
const seed = Number(process.env.RAFTBUS_SEED ?? randomInt(1, 2 ** 31 - 1));
const path = process.env.RAFTBUS_PATH;

/** testTimeoutMs grows with the soak factor (about 60 s per 1,000 schedules on a loaded 2-core machine). */
const testTimeoutMs = Math.max(120_000, 90_000 * factor);

function check(name: string, arbitrary: fc.Arbitrary<Scenario>, numRuns: number): { runs: number; acknowledged: number } {
  console.log(`${name}: seed=${seed} runs=${numRuns} (replay: RAFTBUS_SEED=${seed}${path ? ` RAFTBUS_PATH=${path}` : ''})`);
  let runs = 0;
  let acknowledged = 0;
  const result = fc.check(
    fc.property(arbitrary, (scenario) => {
      const outcome = runScenario(scenario);
      runs++;
      acknowledged += outcome.acknowledged;
    }),
    { seed, numRuns: path ? 1 : numRuns, ...(path ? { path } : {}), endOnFailure: false },
  );
  if (result.failed) {
    const counterexample = result.counterexample?.[0] as Scenario | undefined;
    if (counterexample !== undefined) {
      mkdirSync('.sim-failures', { recursive: true });
      const file = `.sim-failures/${name.replace(/\W+/g, '-')}-${seed}.json`;
      let trace: readonly string[] = [];
      try {
        runScenario(counterexample, { trace: true });
      } catch (error) {
        trace = error instanceof ScenarioFailure ? [error.message, ...error.trace] : [String(error)];
      }
      writeFileSync(file, JSON.stringify({ seed, path: result.counterexamplePath, scenario: counterexample, trace }, null, 1));
      console.log(`counterexample written to ${file}`);
    }
    const replay = `replay: RAFTBUS_SEED=${seed} RAFTBUS_PATH=${result.counterexamplePath} npx vitest run test/sim/raft.sim.test.ts -t '${testNames[name]}'`;
    throw new Error(`${fc.defaultReportMessage(result) ?? 'property failed'}\n${String(result.errorInstance)}\n${replay}`);
  }
  return { runs, acknowledged };
}

const testNames: Record<string, string> = {
  'raft faults': 'keeps every safety property under crashes, partitions, loss, duplication and reordering',
  'raft membership': 'keeps them across membership changes, leadership transfer, snapshots and reads',
  'raft leader churn': 'keeps them when faults strike whoever leads, one entry per message (Figure 8 territory)',
};

describe('raft simulation', () => {
  it(testNames['raft faults']!, { timeout: testTimeoutMs }, () => {
    const { runs, acknowledged } = check('raft faults', scenarioArbitrary({ membership: false, stepsMax: 40 }), 1500 * factor);
    expect(runs).toBeGreaterThan(0);
    expect(acknowledged).toBeGreaterThan(runs); // the schedules made real progress, not only faults
  });

  it(testNames['raft membership']!, { timeout: testTimeoutMs }, () => {
    const { runs, acknowledged } = check('raft membership', scenarioArbitrary({ membership: true, stepsMax: 40 }), 500 * factor);
    expect(runs).toBeGreaterThan(0);
    expect(acknowledged).toBeGreaterThan(runs);
  });

  it(testNames['raft leader churn']!, { timeout: testTimeoutMs }, () => {
    const { runs } = check('raft leader churn', churnScenarioArbitrary({ stepsMax: 60 }), 500 * factor);
    expect(runs).toBeGreaterThan(0);
  });
});
