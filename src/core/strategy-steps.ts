/**
 * setSecret and finishSecret, once for both strategies. The reset strategy (rotation-steps.ts) and the
 * replace strategy (replace-steps.ts) each call these with what truly differs between them, spelled out
 * in PushPlan and PromotionPlan; the order of the calls, the ledger writes and the events are this code's.
 */
import type { PendingRotation, RotationDeps } from './ports.ts';
import { managedRunner, pendingOf, recordPending, type StepOutcome, type StepRequest } from './step-support.ts';
import { atRunnerId, hostHoldsVersion } from './types.ts';
import type { HostResult, RotationRecord, RunnerSecretValue } from './types.ts';

/** What the ledger's records carry for the strategy: nothing for reset; `strategy` and the replaced runner for replace. */
export type StrategyMarks = Pick<PendingRotation, 'strategy' | 'replacedRunnerId'>;

/** How one strategy's setSecret differs. */
export interface PushPlan {
  /** The version this rotation fills (read by the caller, which names it in its own errors). */
  value: RunnerSecretValue;
  marks: StrategyMarks;
  /** Runs once the runner is known to be managed, before any host is touched (replace: enable the new runner on every project). */
  beforePush?: () => Promise<void>;
  /** replace: the hosts add the new runner's table, copied from this runner's (`--mode add`); absent: they update the token. */
  addFromRunnerId?: number;
  /** The warning for a host that did not take the version. */
  missed: (host: HostResult) => string;
}

/** setSecret: push the version to every host, record one result per host, warn about each miss. A miss is not fatal here. */
export async function pushVersion(deps: RotationDeps, request: StepRequest, fromVersionId: string | null, plan: PushPlan): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const step = 'setSecret';
  const runner = atRunnerId(managedRunner(deps, secretId, step), plan.value.runnerId);
  await plan.beforePush?.();
  const hosts = await deps.fleet.push(
    runner,
    {
      secretId,
      versionId,
      ...(plan.addFromRunnerId === undefined ? {} : { addFromRunnerId: plan.addFromRunnerId }),
      previousVersionId: fromVersionId,
      tokenExpiresAt: plan.value.tokenExpiresAt,
    },
    (result) => deps.events({ kind: 'host-result', secretId, result }),
  );
  const pending = await pendingOf(deps, secretId, versionId, fromVersionId);
  await recordPending(deps, { ...pending, hosts, ...plan.marks });
  for (const missed of hosts.filter((h) => !hostHoldsVersion(h))) {
    deps.events({ kind: 'warning', secretId, message: plan.missed(missed) });
  }
  return { step, hosts };
}

/** How one strategy's finishSecret differs. */
export interface PromotionPlan {
  /** The version this rotation fills. */
  value: RunnerSecretValue;
  marks: StrategyMarks;
  /**
   * When the old token dies (RotationRecord.resetAt). `reset`: GitLab's reply to the reset, as the pending
   * record keeps it. `promotion`: replace deletes the old runner just after the promotion, once every host
   * runs the new one.
   */
  oldTokenDies: 'reset' | 'promotion';
  /** After AWSCURRENT moved: reset names the hosts that missed (the next scan re-pushes); replace retires the old runner. */
  afterPromotion: (record: RotationRecord) => Promise<void> | void;
}

/**
 * finishSecret: write the rotation record, then move AWSCURRENT (AWSPREVIOUS follows). The record goes
 * first: once AWSCURRENT moves, a retried finishSecret returns at the guard and would never write it. A
 * retry after the record was written but the promotion failed finds no pending record: the written one
 * still holds the timings and the hosts' results (pendingOf).
 */
export async function promoteVersion(deps: RotationDeps, request: StepRequest, fromVersionId: string | null, plan: PromotionPlan): Promise<StepOutcome> {
  const { secretId, versionId } = request;
  const pending = await pendingOf(deps, secretId, versionId, fromVersionId);
  const promotedAt = deps.clock.now().toISOString();
  const record: RotationRecord = {
    secretId,
    runnerId: plan.value.runnerId,
    fromVersionId,
    toVersionId: versionId,
    resetAt: plan.oldTokenDies === 'reset' ? pending.resetAt : promotedAt,
    storedAt: pending.storedAt,
    promotedAt,
    tokenExpiresAt: plan.value.tokenExpiresAt,
    hosts: pending.hosts,
    ...plan.marks,
  };
  await deps.ledger.saveRotation(record);
  await deps.secrets.promote(secretId, versionId, fromVersionId);
  deps.events({ kind: 'promoted', secretId, versionId, record });
  await plan.afterPromotion(record);
  return { step: 'finishSecret', record, hosts: record.hosts };
}
