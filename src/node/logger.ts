// Logging: pino, one JSON object per line. Every line carries `node`; a Raft group's logger adds `group`.
// For a terminal, `pretty` turns each line into one short readable line with a tiny formatter of our
// own (no pino-pretty dependency): time, level, node, group, message, then the other fields as key=JSON.
import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';

export type { Logger } from 'pino';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

export interface LoggerOptions {
  readonly nodeId: number;
  /** level is the least severe level written; default 'info'. */
  readonly level?: LogLevel;
  /** pretty writes readable lines instead of JSON; default false. */
  readonly pretty?: boolean;
  /** destination receives every line; default standard output. */
  readonly destination?: DestinationStream;
}

/**
 * createLogger returns a pino logger whose every line is a JSON object with `node` set to nodeId
 * (pino's default pid and hostname are left out: one process may run several nodes in tests).
 */
export function createLogger(options: LoggerOptions): Logger {
  const pinoOptions = { level: options.level ?? 'info', base: { node: options.nodeId } };
  const destination = options.destination ?? (options.pretty === true ? process.stdout : undefined);
  if (destination === undefined) return pino(pinoOptions);
  if (options.pretty !== true) return pino(pinoOptions, destination);
  return pino(pinoOptions, { write: (line: string) => destination.write(formatPrettyLine(line)) });
}

/** groupLogger returns a child of logger whose every line also carries `group`. */
export function groupLogger(logger: Logger, group: number): Logger {
  return logger.child({ group });
}

const levelLabels: Readonly<Record<number, string>> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** formatPrettyLine turns one pino JSON line into `HH:MM:SS.mmm LEVEL node=1 group=2 message k=v`, plus a stack if any. */
export function formatPrettyLine(line: string): string {
  const { time, level, node, group, msg, err, ...rest } = JSON.parse(line) as Record<string, unknown>;
  const label = (levelLabels[Number(level)] ?? String(level)).padEnd(5);
  const head = [new Date(Number(time)).toISOString().slice(11, 23), label, `node=${String(node)}`];
  if (group !== undefined) head.push(`group=${String(group)}`);
  const fields = Object.entries(rest).map(([key, value]) => `${key}=${JSON.stringify(value)}`);
  const stack = typeof err === 'object' && err !== null && 'stack' in err ? `\n${String(err.stack)}` : '';
  return `${[...head, String(msg ?? ''), ...fields].join(' ')}${stack}\n`;
}
