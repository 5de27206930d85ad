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

interface ScheduleOptions<S, R> {
  name: string;
  file: string;
  testName: string;
  arbitrary: fc.Arbitrary<S>;
  numRuns: number;
  run: (scenario: S) => R;
  traced: (scenario: S) => R;
  /** shrink: false reports the first failing schedule as found (a schedule that costs seconds would shrink for minutes). */
  shrink?: boolean;
}

function parameters(name: string, numRuns: number, shrink = true): fc.Parameters<unknown> {
  console.log(`${name}: seed=${simSeed} runs=${numRuns} (replay: RAFTBUS_SEED=${simSeed}${simPath ? ` RAFTBUS_PATH=${simPath}` : ''})`);
  return { seed: simSeed, numRuns: simPath ? 1 : numRuns, ...(simPath ? { path: simPath } : {}), endOnFailure: !shrink };
}

/** traceOf runs the traced replay of a counterexample and returns what its failure says. */
async function traceOf<S>(traced: (scenario: S) => unknown, counterexample: S): Promise<readonly string[]> {
  try {
    await traced(counterexample);
    return [];
  } catch (error) {
    return error instanceof ScenarioFailure ? [error.message, ...error.trace] : [String(error)];
  }
}

/** failed writes the failing schedule and its trace to .sim-failures/ and returns the error to throw, with the replay command. */
function failed<S>(options: ScheduleOptions<S, unknown>, result: fc.RunDetails<[S]>, trace: readonly string[] | undefined): Error {
  const counterexample = result.counterexample?.[0];
  if (counterexample !== undefined && trace !== undefined) {
    mkdirSync('.sim-failures', { recursive: true });
    const output = `.sim-failures/${options.name.replace(/\W+/g, '-')}-${simSeed}.json`;
    writeFileSync(output, JSON.stringify({ seed: simSeed, path: result.counterexamplePath, scenario: counterexample, trace }, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value), 1));
    console.log(`counterexample written to ${output}`);
  }
  const replay = `replay: RAFTBUS_SEED=${simSeed} RAFTBUS_PATH=${result.counterexamplePath} npx vitest run ${options.file} -t '${options.testName}'`;
  return new Error(`${fc.defaultReportMessage(result) ?? 'property failed'}\n${String(result.errorInstance)}\n${replay}`);
}

/**
 * checkSchedules runs `run` on numRuns schedules (one, when replaying a path) and throws with the
 * replay command when one fails, after writing the failing schedule and the trace `traced` gives.
 */
export function checkSchedules<S>(options: ScheduleOptions<S, void>): void {
  const result = fc.check(fc.property(options.arbitrary, options.run), parameters(options.name, options.numRuns) as fc.Parameters<[S]>);
  if (!result.failed) return;
  const counterexample = result.counterexample?.[0];
  let trace: readonly string[] | undefined;
  if (counterexample !== undefined) {
    try {
      options.traced(counterexample);
      trace = [];
    } catch (error) {
      trace = error instanceof ScenarioFailure ? [error.message, ...error.trace] : [String(error)];
    }
  }
  throw failed(options, result, trace);
}

/** checkAsyncSchedules is checkSchedules for a simulation that lets promises settle between events (the group coordinator's). */
export async function checkAsyncSchedules<S>(options: ScheduleOptions<S, Promise<void>>): Promise<void> {
  const result = await fc.check(fc.asyncProperty(options.arbitrary, options.run), parameters(options.name, options.numRuns, options.shrink) as fc.Parameters<[S]>);
  if (!result.failed) return;
  const counterexample = result.counterexample?.[0];
  throw failed(options, result, counterexample === undefined ? undefined : await traceOf(options.traced, counterexample));
}
