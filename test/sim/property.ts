// What every simulation property shares: the seed (printed, or RAFTBUS_SEED), replay of one
// counterexample (RAFTBUS_PATH), soak scaling (RAFTBUS_SIM_RUNS_FACTOR), and on failure a trace
// of the shrunk schedule in .sim-failures/ and the exact command that replays it.
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { ScenarioFailure } from './raft-scenario.js';

export const simFactor = Number(process.env.RAFTBUS_SIM_RUNS_FACTOR ?? '1');
export const simSeed = Number(process.env.RAFTBUS_SEED ?? randomInt(1, 2 ** 31 - 1));
export const simPath = process.env.RAFTBUS_PATH;

/** simTestTimeoutMs grows with the soak factor (about 60 s per 1,000 schedules on a loaded 2-core machine). */
export const simTestTimeoutMs = Math.max(120_000, 90_000 * simFactor);

/**
 * checkSchedules runs `run` on numRuns schedules (one, when replaying a path) and throws with the
 * replay command when one fails, after writing the failing schedule and the trace `traced` gives.
 */
export function checkSchedules<S>(options: {
  name: string;
  file: string;
  testName: string;
  arbitrary: fc.Arbitrary<S>;
  numRuns: number;
  run: (scenario: S) => void;
  traced: (scenario: S) => void;
}): void {
  const { name, file, testName } = options;
  console.log(`${name}: seed=${simSeed} runs=${options.numRuns} (replay: RAFTBUS_SEED=${simSeed}${simPath ? ` RAFTBUS_PATH=${simPath}` : ''})`);
  const result = fc.check(fc.property(options.arbitrary, options.run), {
    seed: simSeed,
    numRuns: simPath ? 1 : options.numRuns,
    ...(simPath ? { path: simPath } : {}),
    endOnFailure: false,
  });
  if (!result.failed) return;
  const counterexample = result.counterexample?.[0];
  if (counterexample !== undefined) {
    mkdirSync('.sim-failures', { recursive: true });
    const output = `.sim-failures/${name.replace(/\W+/g, '-')}-${simSeed}.json`;
    let trace: readonly string[] = [];
    try {
      options.traced(counterexample);
    } catch (error) {
      trace = error instanceof ScenarioFailure ? [error.message, ...error.trace] : [String(error)];
    }
    writeFileSync(output, JSON.stringify({ seed: simSeed, path: result.counterexamplePath, scenario: counterexample, trace }, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value), 1));
    console.log(`counterexample written to ${output}`);
  }
  const replay = `replay: RAFTBUS_SEED=${simSeed} RAFTBUS_PATH=${result.counterexamplePath} npx vitest run ${file} -t '${testName}'`;
  throw new Error(`${fc.defaultReportMessage(result) ?? 'property failed'}\n${String(result.errorInstance)}\n${replay}`);
}
