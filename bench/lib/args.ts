// Command-line helpers shared by the benchmarks.
import { readFileSync } from 'node:fs';

/** integerArg parses --name's value; throws naming the flag and the accepted range. */
export function integerArg(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) throw new Error(`--${name}: expected an integer in ${min}..${max}, got '${value}'`);
  return n;
}

/** printHeaderHelp prints a script's leading `//` comment block (its --help text) and exits. */
export function printHeaderHelp(scriptUrl: string): never {
  const lines = readFileSync(new URL(scriptUrl), 'utf8').split('\n');
  const end = lines.findIndex((line) => !line.startsWith('//'));
  console.log(lines.slice(0, end === -1 ? lines.length : end).map((line) => line.slice(3)).join('\n'));
  process.exit(0);
}
