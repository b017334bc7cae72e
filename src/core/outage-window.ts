import { hostHoldsVersion } from './types.ts';
import type { RotationRecord } from './types.ts';

export interface OutageWindow {
  /**
   * From the old token's death (`reset`: GitLab's reset reply; `replace`: the old runner's deletion) to
   * the last host that took the new token; 0 where every host took it before the old one died.
   */
  ms: number | null;
  /** False when some host never took the new token: its outage goes on until it is repaired. */
  complete: boolean;
  hostsMissed: number;
}

export function outageWindow(record: RotationRecord): OutageWindow {
  const reset = Date.parse(record.resetAt);
  const took = record.hosts.filter(hostHoldsVersion);
  const hostsMissed = record.hosts.length - took.length;
  if (took.length === 0) return { ms: null, complete: false, hostsMissed };
  const last = Math.max(...took.map((h) => Date.parse(h.finishedAt)));
  return { ms: Math.max(last - reset, 0), complete: hostsMissed === 0, hostsMissed };
}
