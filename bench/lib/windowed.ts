// windowed keeps up to `window` calls of an asynchronous operation in flight until `count` have
// completed or the time cap has passed, whichever comes first, and records each call's latency.

export interface WindowedOptions {
  readonly count: number;
  /** window: calls in flight at most (1: one at a time). */
  readonly window: number;
  readonly capS: number;
}

export interface WindowedResult {
  /** latencies (ms) of the completed calls, in completion order; the first `done` slots are filled. */
  readonly latencies: Float64Array;
  readonly done: number;
  readonly elapsedS: number;
  /** capped: the time cap stopped the loop before `count` calls were issued. */
  readonly capped: boolean;
  readonly errors: number;
  readonly firstError: string | undefined;
}

/**
 * windowed issues operation(i) for i = 0, 1, ... with at most options.window in flight. It stops
 * issuing at the first error (the calls already in flight still settle) and resolves once nothing
 * is in flight. It never rejects: errors are counted.
 */
export async function windowed(options: WindowedOptions, operation: (i: number) => Promise<unknown>): Promise<WindowedResult> {
  const latencies = new Float64Array(options.count);
  const start = performance.now();
  const deadline = start + options.capS * 1000;
  let issued = 0;
  let done = 0;
  let inFlight = 0;
  let errors = 0;
  let firstError: string | undefined;
  let capped = false;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (errors === 0 && inFlight < options.window && issued < options.count) {
        if (performance.now() >= deadline) {
          capped = true;
          break;
        }
        const i = issued++;
        inFlight++;
        const sentAt = performance.now();
        operation(i).then(
          () => {
            latencies[done++] = performance.now() - sentAt;
            inFlight--;
            pump();
          },
          (error: unknown) => {
            errors++;
            firstError ??= error instanceof Error ? `${error.name}: ${error.message}` : String(error);
            inFlight--;
            pump();
          },
        );
      }
      if (inFlight === 0 && (errors > 0 || capped || issued >= options.count)) resolve();
    };
    pump();
  });
  return { latencies, done, elapsedS: (performance.now() - start) / 1000, capped, errors, firstError };
}
