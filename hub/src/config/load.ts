import { ErrorCode, FlotillaError, InvalidError } from '@flotilla/shared';
import type { GitSource } from '../source/index.js';
import { FLEET_CONFIG_FILE, type FleetConfig, parseFleetConfig } from './fleet-config.js';

/**
 * Reads and parses flotilla.yaml at `commit` (normally the default branch head). A missing
 * file is an InvalidError saying so, an invalid one names its line and field: the hub shows
 * either as the source's error instead of crashing.
 */
export async function loadFleetConfig(source: GitSource, commit: string): Promise<FleetConfig> {
  const data = await source.readFile(commit, FLEET_CONFIG_FILE);
  if (!data)
    throw new InvalidError(
      FLEET_CONFIG_FILE,
      `not found at the root of ${source.url} at ${commit.slice(0, 12)} (it declares environments and the pipeline)`,
    );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch (cause) {
    throw new FlotillaError(ErrorCode.Invalid, `${FLEET_CONFIG_FILE}: is not UTF-8 text`, { cause });
  }
  return parseFleetConfig(text, FLEET_CONFIG_FILE);
}
