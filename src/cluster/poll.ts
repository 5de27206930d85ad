// pollUntil: the one wait-until-true loop of the project's tools and tests (starting a cluster, the
// chaos run, benchmarks, process tests). Each check runs after the previous one settled.

export interface PollOptions {
  /** what names the awaited condition in the timeout error. */
  readonly what: string;
  readonly timeoutMs: number;
  /** everyMs: the pause between checks; default 50. */
  readonly everyMs?: number;
}

/**
 * pollUntil runs check until it returns something other than undefined or false, and resolves with
 * it; throws `timed out after <timeoutMs> ms waiting for <what>` once timeoutMs have passed.
 */
export async function pollUntil<T>(check: () => T | undefined | false | Promise<T | undefined | false>, options: PollOptions): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 50));
  }
}
