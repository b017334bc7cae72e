import { NestedStack } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { createHash } from 'node:crypto';
import type { AwsFleetConfig, AwsManagedRunner } from '../../src/config/aws-fleet-config.ts';
import { RunnerConvergence } from './runner-convergence.ts';
import { RunnerSecret } from './runner-secret.ts';

/**
 * How many nested stacks the runners are spread over. Fixed, so that a runner never moves: its stack is
 * the hash of its name modulo this number, whatever else the fleet file holds. (A secret that moved
 * between stacks would be created in the new one before the old one let go of its name, and fail.)
 * 100 stacks of at most 450 resources hold 10,000 runners with room to spare (bench: the fullest stack).
 */
export const RUNNER_STACKS = 100;

/** Under CloudFormation's 500 resources per template, with room for what CDK adds (its metadata, parameters). */
export const RESOURCES_PER_SHARD_MAX = 450;

/** The nested stack a runner's resources live in: `Runners<nn>`. */
export function shardOf(runnerName: string): number {
  return createHash('sha256').update(runnerName).digest().readUInt32BE(0) % RUNNER_STACKS;
}

export interface RunnerShardProps {
  runners: AwsManagedRunner[];
  rotationLambdaArn: string;
  convergeDocumentName: string;
  settings: Pick<AwsFleetConfig, 'convergeEveryHours' | 'ssm'>;
  /** The root stack's name, which starts every association's name. */
  namePrefix: string;
}

/**
 * A nested stack of runners: each runner's secret and rotation schedule (RunnerSecret) and its convergence
 * associations (RunnerConvergence). The root stack holds everything shared, so its size does not grow with
 * the fleet: one nested stack resource per non-empty shard.
 */
export class RunnerShard extends NestedStack {
  readonly runnerSecrets: RunnerSecret[] = [];
  readonly convergence: RunnerConvergence[] = [];

  constructor(scope: Construct, id: string, props: RunnerShardProps) {
    super(scope, id, { description: `GitLab runner token secrets (${props.runners.length} runners) of gitlab-runner-token-rotator` });
    for (const runner of props.runners) {
      const runnerSecret = new RunnerSecret(this, `Runner-${runner.name}`, { runner, rotationLambdaArn: props.rotationLambdaArn });
      this.runnerSecrets.push(runnerSecret);
      if (props.settings.convergeEveryHours > 0) {
        this.convergence.push(
          new RunnerConvergence(this, `Converge-${runner.name}`, {
            runner,
            secretArn: runnerSecret.secret.secretArn,
            documentName: props.convergeDocumentName,
            everyHours: props.settings.convergeEveryHours,
            ssm: props.settings.ssm,
            namePrefix: props.namePrefix,
          }),
        );
      }
    }
    const resources = props.runners.length * 2 + this.convergence.reduce((n, c) => n + c.associations.length, 0);
    if (resources > RESOURCES_PER_SHARD_MAX) {
      throw new Error(
        `${id}: ${props.runners.length} runners need ${resources} resources, over ${RESOURCES_PER_SHARD_MAX} of one nested stack; choose hosts by tag rather than by long instance id lists (one association per 50 ids)`,
      );
    }
  }
}
