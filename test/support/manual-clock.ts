import type { Clock } from '../../src/core/ports.ts';

/** Real time plus whatever the code under test slept: back-off waits pass at once but still count. */
export function manualClock(): Clock & { sleptMs: number[] } {
  let offset = 0;
  const sleptMs: number[] = [];
  return {
    sleptMs,
    now: () => new Date(Date.now() + offset),
    sleep: async (ms) => {
      sleptMs.push(ms);
      offset += ms;
    },
  };
}
