/** The agent's version, sent to the hub at join and shown in its metrics. */
export const AGENT_VERSION = '0.1.0';
