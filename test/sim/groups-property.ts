// checkAsyncSchedules is checkSchedules (property.ts) for a simulation that must let promises settle
// between its events, as the group coordinator's does: the same seed line, replay by RAFTBUS_SEED and
// RAFTBUS_PATH, failing schedule and trace written to .sim-failures/, and the replay command.
import { mkdirSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { simPath, simSeed } from './property.js';
import { ScenarioFailure } from './raft-scenario.js';

export async function checkAsyncSchedules<S>(options: {
  name: string;
  file: string;
  testName: string;
  arbitrary: fc.Arbitrary<S>;
  numRuns: number;
  run: (scenario: S) => Promise<void>;
  traced: (scenario: S) => Promise<void>;
}): Promise<void> {
  const { name, file, testName } = options;
  console.log(`${name}: seed=${simSeed} runs=${options.numRuns} (replay: RAFTBUS_SEED=${simSeed}${simPath ? ` RAFTBUS_PATH=${simPath}` : ''})`);
  const result = await fc.check(fc.asyncProperty(options.arbitrary, options.run), {
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
      await options.traced(counterexample);
    } catch (error) {
      trace = error instanceof ScenarioFailure ? [error.message, ...error.trace] : [String(error)];
    }
    writeFileSync(output, JSON.stringify({ seed: simSeed, path: result.counterexamplePath, scenario: counterexample, trace }, undefined, 1));
    console.log(`counterexample written to ${output}`);
  }
  const replay = `replay: RAFTBUS_SEED=${simSeed} RAFTBUS_PATH=${result.counterexamplePath} npx vitest run ${file} -t '${testName}'`;
  throw new Error(`${fc.defaultReportMessage(result) ?? 'property failed'}\n${String(result.errorInstance)}\n${replay}`);
}
