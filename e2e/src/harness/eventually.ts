/**
 * Polls `fn` until it returns without throwing (and, if it returns a value, that value),
 * or throws the last error after `timeoutMs`. For behaviour that converges, not for timing.
 */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; message?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const msg = options.message ? `${options.message}: ` : '';
      throw new Error(
        `${msg}did not happen in time; last error: ${last instanceof Error ? last.message : String(last)}`,
        { cause: last },
      );
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}
