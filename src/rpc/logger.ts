// The logger the rpc layer writes to: the subset of pino's Logger it uses, so that a pino logger,
// a child of one, or a test double all fit.

/** LogFn logs a structured object with an optional message, as pino does. */
export type LogFn = (object: Record<string, unknown>, message?: string) => void;

/** RpcLogger is a pino-like logger: leveled log functions and child loggers with bindings. */
export interface RpcLogger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
  child(bindings: Record<string, unknown>): RpcLogger;
}
