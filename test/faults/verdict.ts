/**
 * The one verdict every fault case goes through, on two snapshots: right after the case ran (S1) and after
 * its repair and one more scan (S2). It is DESIGN.md's invariants seen from outside:
 * - tokenSafe (invariant 1): at S1 and at S2, GitLab accepts the token AWSCURRENT holds, or an alert names the
 *   runner with a next step (the operator was told; the token is not silently lost).
 * - hostsSafe (invariant 5): at S1 every host holds AWSCURRENT (accepted by GitLab, or covered by the
 *   runner's alert when AWSCURRENT itself is rejected) or is named in a host-missed (or, for a replacement,
 *   replacement-stalled) alert; at S2, after the
 *   repair and the scan, every host holds it.
 * - noLeak (invariant 3): no known token (and nothing shaped like one) in any captured stream.
 */
import { inspect } from 'node:util';
import type { Alert, AlertKind } from '../../src/core/alerts.ts';
import type { HostState, World } from './fault-world.ts';

/** Alerts that stand for the whole runner (its token), as opposed to host-missed. */
const RUNNER_KINDS: ReadonlySet<AlertKind> = new Set(['admin-token-missing', 'token-rejected', 'rotation-failed', 'rotation-stuck']);
const TOKEN_SHAPE = /gl(rt|pat)-[A-Za-z0-9_-]{8,}/;

export interface Snapshot {
  current: string | undefined;
  accepted: boolean;
  hosts: HostState[];
  alerts: Alert[];
}

export interface CaseVerdict {
  name: string;
  engine: string;
  passed: boolean;
  tokenSafe: boolean;
  hostsSafe: boolean;
  noLeak: boolean;
  /** AWSCURRENT rejected by GitLab at some point with no alert naming the runner. */
  tokenLost: boolean;
  /** Some invariant failed with no alert naming what failed (the runner, or the host). */
  unalerted: boolean;
  /** Every reason the case did not pass, in words (never a token). */
  problems: string[];
  alertKinds: string[];
  resets: number;
}

export async function snapshot(world: World): Promise<Snapshot> {
  const current = await world.currentToken();
  return { current, accepted: current !== undefined && world.simulator.accepts(current), hosts: await world.hostStates(), alerts: world.alerts() };
}

function hasNextStep(alert: Alert): boolean {
  return alert.nextStep.trim().length > 0 && alert.runbook.length > 0;
}

export function runnerAlerted(world: World, alerts: Alert[]): boolean {
  return alerts.some((a) => a.runner === world.runnerName && RUNNER_KINDS.has(a.kind) && hasNextStep(a));
}

/** Alerts that name hosts: one that missed the token, one that did not take a replacement runner. */
const HOST_KINDS: ReadonlySet<AlertKind> = new Set(['host-missed', 'replacement-stalled']);

export function hostAlerted(world: World, alerts: Alert[], hostName: string): boolean {
  const names = world.hosts.find((h) => h.sim.name === hostName)?.alertNames ?? [hostName];
  return alerts.some((a) => HOST_KINDS.has(a.kind) && a.runner === world.runnerName && hasNextStep(a) && a.hosts.some((h) => names.includes(h.host)));
}

function hostOk(world: World, s: Snapshot, host: HostState): boolean {
  return host.token !== undefined && host.token === s.current && (host.accepted || (!s.accepted && runnerAlerted(world, s.alerts)));
}

function describeHost(host: HostState): string {
  return `${host.name} (${host.problem ?? (host.accepted ? 'holds another accepted token' : 'token rejected by GitLab')})`;
}

/** Every known token and anything shaped like one, looked for in everything the run printed, logged or threw. */
export function leaks(streams: unknown[], known: string[]): string[] {
  const text = streams
    .map((t) => (typeof t === 'string' ? t : t instanceof Error ? `${t.stack}\n${inspect(t, { depth: 10 })}` : inspect(t, { depth: 10, maxArrayLength: null, maxStringLength: null })))
    .join('\n');
  const found: string[] = [];
  const knownHits = known.filter((token) => token.length >= 8 && text.includes(token)).length;
  if (knownHits > 0) found.push(`${knownHits} known token(s) in captured output`);
  if (TOKEN_SHAPE.test(text)) found.push('something shaped like a token in captured output');
  return found;
}

export function judge(world: World, name: string, s1: Snapshot, s2: Snapshot, leaked: string[], extra: string[]): CaseVerdict {
  const problems: string[] = [];
  let tokenLost = false;
  let unalerted = false;

  for (const [label, s] of [['after the run', s1], ['after the repair scan', s2]] as const) {
    if (s.accepted) continue;
    if (runnerAlerted(world, s.alerts)) continue;
    tokenLost = true;
    unalerted = true;
    problems.push(`${label}: GitLab rejects AWSCURRENT and no alert names runner ${world.runnerName}`);
  }

  let hostsSafe = true;
  for (const host of s1.hosts) {
    if (hostOk(world, s1, host)) continue;
    if (hostAlerted(world, s1.alerts, host.name)) continue;
    hostsSafe = false;
    unalerted = true;
    problems.push(`after the run: host ${describeHost(host)} lacks AWSCURRENT and no host alert names it`);
  }
  for (const host of s2.hosts) {
    if (hostOk(world, s2, host)) continue;
    hostsSafe = false;
    const alerted = hostAlerted(world, s2.alerts, host.name);
    if (!alerted) unalerted = true;
    problems.push(`after the repair scan: host ${describeHost(host)} still lacks AWSCURRENT${alerted ? ' (alerted, not repaired)' : ' and no alert names it'}`);
  }

  problems.push(...leaked, ...extra);
  const tokenSafe = !tokenLost;
  return {
    name,
    engine: world.engine,
    passed: problems.length === 0,
    tokenSafe,
    hostsSafe,
    noLeak: leaked.length === 0,
    tokenLost,
    unalerted,
    problems,
    alertKinds: [...new Set(s2.alerts.map((a) => a.kind))],
    resets: world.resets(),
  };
}
