/**
 * Parses an RFC 6901 JSON pointer (`/spec/replicas`, `/metadata/annotations/a~1b`) into its
 * reference tokens. Shared so the hub refuses in flotilla.yaml exactly what the agent could not
 * use. Throws an Error that quotes the pointer.
 */
export function parseJsonPointer(pointer: string): string[] {
  if (typeof pointer !== 'string' || !pointer.startsWith('/')) {
    throw new Error(`${JSON.stringify(pointer)} is not a JSON pointer (it must start with /)`);
  }
  if (/~[^01]|~$/.test(pointer)) {
    throw new Error(`${JSON.stringify(pointer)} is not a JSON pointer (~ must be followed by 0 or 1)`);
  }
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}
