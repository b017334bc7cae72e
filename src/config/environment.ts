/**
 * The one place that reads process.env for the CLI. Everything else receives these values.
 */
export interface CliEnvironment {
  /** Default fleet file for the local engine. */
  fleetPath: string;
}

export function readCliEnvironment(env: NodeJS.ProcessEnv = process.env): CliEnvironment {
  return {
    fleetPath: env.ROTATOR_FLEET ?? '/etc/gitlab-runner-rotator/fleet.json',
  };
}
