import { InvalidInputError, RotationInProgressError } from '../core/errors.ts';
import { openRotationVersionId } from '../core/rotation-guards.ts';
import { describeMigrationPlan, planMigration, type MigrationDeps, type MigrationPlan } from '../core/migration-plan.ts';
import type { RotationLedger, SecretStore } from '../core/ports.ts';
import type { ManagedRunner } from '../core/types.ts';
import type { LocalEngine } from '../engines/local-engine.ts';
import type { Output } from './output.ts';
import { printRotationReport, rotateRunners, selectRunners } from './rotate-command.ts';

export interface MigrateOptions {
  /** Print the plan and change nothing. */
  dryRun: boolean;
  /** Replace a runner that is already on a glrt- token too. */
  force: boolean;
  /** Withdraw an open request instead (a replacement already under way is not stopped by it). */
  cancel?: boolean;
}

/**
 * `rotator migrate RUNNER`: moves a runner registered with a legacy registration token to a new runner
 * created with POST /user/runners, with no outage (one rotation by replacement, see core/replace-steps.ts).
 * Prints the plan first; `--dry-run` stops there. Returns the exit code.
 */
export async function migrateLocal(engine: LocalEngine, name: string, options: MigrateOptions, output: Output, now: Date): Promise<number> {
  const [runner] = await selectRunners(engine, name, false, now);
  if (!runner) return 2;
  if (options.cancel) return withdraw(engine.ledger, runner, output);
  const plan = await planMigration(engine.deps, runner, engine.deps.replace?.confirmWithinMs);
  if (!(await readyToMigrate(engine.deps.secrets, plan, options, output))) return 0;
  await engine.ledger.requestReplacement(runner.secretId, now.toISOString());
  const problems = printRotationReport(await rotateRunners(engine, [runner], output), output);
  return problems > 0 ? 1 : 0;
}

/**
 * Errors with which Secrets Manager refuses RotateSecret outright (nothing started), as the store names
 * them. Not "a previous rotation isn't complete": that rotation may be this migration's, started by a
 * reply that was lost, and it needs the request.
 */
const RotateSecretRefusals: ReadonlySet<string> = new Set([
  'SecretNotFoundError',
  'InvalidRequestException',
  'InvalidParameterException',
  'AccessDeniedException',
  'ResourceNotFoundException',
]);

export interface AwsMigrateDeps extends MigrationDeps {
  secrets: SecretStore & { startRotation(secretId: string): Promise<string> };
  /** The stack's ledger table (its LedgerTableName output); only needed when not a dry run. */
  ledger: Pick<RotationLedger, 'requestReplacement' | 'withdrawReplacement'> | undefined;
}

/**
 * `rotator migrate --aws RUNNER`: the same plan, read with the operator's credentials; then a replacement
 * request in the stack's ledger and RotateSecret, so the rotation hook (the Lambda) carries it out.
 */
export async function migrateAws(deps: AwsMigrateDeps, runner: ManagedRunner, options: MigrateOptions, output: Output, now: Date): Promise<number> {
  const ledger = () => {
    if (!deps.ledger) throw new InvalidInputError('--ledger-table', "is required with --aws: the stack's LedgerTableName output (env ROTATOR_LEDGER_TABLE)");
    return deps.ledger;
  };
  if (options.cancel) return withdraw(ledger(), runner, output);
  const plan = await planMigration(deps, runner);
  if (!(await readyToMigrate(deps.secrets, plan, options, output))) return 0;
  await ledger().requestReplacement(runner.secretId, now.toISOString());
  let versionId: string;
  try {
    versionId = await deps.secrets.startRotation(runner.secretId);
  } catch (error) {
    // Secrets Manager said no, so no rotation started: a request left behind would turn some later
    // scheduled rotation into a replacement. After any other failure (a lost reply) a rotation may have
    // started and needs the request: it stays, and the operator is told how to withdraw it.
    if (RotateSecretRefusals.has((error as Error).name)) await ledger().withdrawReplacement(runner.secretId);
    else output.err(`[${runner.name}] RotateSecret failed without a clear answer; the migration request stays in the ledger. If no rotation started, withdraw it: rotator migrate --aws --cancel ${runner.name}`);
    throw error;
  }
  output.out(`[${runner.name}] migration started (version ${versionId}); follow it in the rotate-secret function's logs`);
  return 0;
}

async function withdraw(ledger: Pick<RotationLedger, 'withdrawReplacement'>, runner: ManagedRunner, output: Output): Promise<number> {
  await ledger.withdrawReplacement(runner.secretId);
  output.out(`[${runner.name}] no replacement requested any more; a rotation already under way goes on as it started (cancel it by removing AWSPENDING from its version)`);
  return 0;
}

/** Prints the plan; false when there is nothing (more) to do: a dry run, or a runner already on glrt-. */
async function readyToMigrate(secrets: Pick<SecretStore, 'describe'>, plan: MigrationPlan, options: MigrateOptions, output: Output): Promise<boolean> {
  const tag = `[${plan.runner.name}]`;
  for (const line of describeMigrationPlan(plan)) output.out(`${tag} ${line}`);
  if (!plan.legacy && !options.force) {
    output.out(`${tag} nothing to migrate: runner ${plan.runnerId} already uses a glrt- authentication token (--force replaces it anyway; strategy "replace" in the fleet file rotates by replacement every time)`);
    return false;
  }
  if (options.dryRun) {
    output.out(`${tag} dry run: nothing changed`);
    return false;
  }
  // A rotation already under way would finish as it started (a reset) and drop the request.
  const description = await secrets.describe(plan.runner.secretId);
  if (openRotationVersionId(description) !== null) {
    throw new RotationInProgressError(`${plan.runner.secretId} has a rotation in progress`, {
      secretId: plan.runner.secretId,
      step: 'migrate',
      fix: 'Let it finish (`rotator rotate` resumes it locally; Secrets Manager retries it in AWS), then migrate.',
    });
  }
  return true;
}
