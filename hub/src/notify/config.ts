import { InvalidError } from '@flotilla/shared';
import { parse } from 'yaml';
import { NOTIFY_KINDS, type NotifyKind, type Receiver } from './notifier.js';

/**
 * Reads the hub's notification receivers (`hub start --notify-config FILE`):
 * `receivers: [{name, url, format: json|slack, events: [promotion.made, …]}]`. The file is the
 * hub's own, like its repository credentials, since a webhook URL is often a secret.
 */
export function parseReceivers(text: string, file: string): Receiver[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new InvalidError(file, `is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const list = (doc as { receivers?: unknown } | null)?.receivers;
  if (!Array.isArray(list)) throw new InvalidError(`${file}: receivers`, 'must be a list');
  const names = new Set<string>();
  return list.map((r, i) => {
    const at = `${file}: receivers[${i}]`;
    const raw = r as Record<string, unknown>;
    if (!raw || typeof raw !== 'object') throw new InvalidError(at, 'must be a mapping with name and url');
    for (const key of Object.keys(raw))
      if (!['name', 'url', 'format', 'events'].includes(key))
        throw new InvalidError(`${at}.${key}`, 'is not a known field');
    if (typeof raw.name !== 'string' || !/^[a-z0-9][-a-z0-9]*$/.test(raw.name))
      throw new InvalidError(`${at}.name`, 'must be a lowercase name (letters, digits, -)');
    if (names.has(raw.name)) throw new InvalidError(`${at}.name`, `duplicates "${raw.name}"`);
    names.add(raw.name);
    let url: URL;
    try {
      url = new URL(String(raw.url));
    } catch {
      // The URL itself is not repeated: it may hold a secret.
      throw new InvalidError(`${at}.url`, 'must be an http:// or https:// URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new InvalidError(`${at}.url`, 'must be an http:// or https:// URL');
    const format = raw.format ?? 'json';
    if (format !== 'json' && format !== 'slack')
      throw new InvalidError(`${at}.format`, 'must be json or slack');
    let events: NotifyKind[] | undefined;
    if (raw.events !== undefined) {
      if (!Array.isArray(raw.events))
        throw new InvalidError(`${at}.events`, `must be a list of ${NOTIFY_KINDS.join(', ')}`);
      for (const e of raw.events)
        if (!(NOTIFY_KINDS as readonly unknown[]).includes(e))
          throw new InvalidError(
            `${at}.events`,
            `${JSON.stringify(e)} is not one of ${NOTIFY_KINDS.join(', ')}`,
          );
      events = raw.events as NotifyKind[];
    }
    return { name: raw.name, url: url.toString(), format, ...(events ? { events } : {}) };
  });
}
