/**
 * The one place that reads process.env for the CLI. Everything else receives these values.
 */
export interface CliEnvironment {
  /** Default fleet file for the local engine. */
  fleetPath: string;
  /** The stack's ledger table (LedgerTableName output), for `migrate --aws`. */
  ledgerTable: string | undefined;
}

export function readCliEnvironment(env: NodeJS.ProcessEnv = process.env): CliEnvironment {
  return {
    fleetPath: env.ROTATOR_FLEET ?? '/etc/gitlab-runner-rotator/fleet.json',
    ledgerTable: env.ROTATOR_LEDGER_TABLE || undefined,
  };
}
