// Assertions guard internal invariants. A failing assertion is a bug: it throws loudly and is
// never caught. Bad input from outside is not a bug and never reaches an assertion.

/** AssertionError is thrown when an internal invariant does not hold. */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
  constructor(
    message: string,
    readonly details: Record<string, unknown> | undefined,
  ) {
    super(details === undefined ? message : `${message} ${JSON.stringify(details)}`);
  }
}

/** assert throws AssertionError when condition is false. */
export function assert(condition: boolean, message: string, details?: Record<string, unknown>): asserts condition {
  if (!condition) throw new AssertionError(message, details);
}
