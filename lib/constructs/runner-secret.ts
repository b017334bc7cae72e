import { RemovalPolicy, Tags } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { AwsManagedRunner } from '../../src/config/aws-fleet-config.ts';
import { runnerTags } from '../../src/config/runner-tags.ts';

export interface RunnerSecretProps {
  runner: AwsManagedRunner;
  /** ARN of the rotation hook (its invoke permission for Secrets Manager is the stack's, once for all secrets). */
  rotationLambdaArn: string;
}

/**
 * One runner's token secret, named `<secretPrefix><runner name>`, with its rotation schedule; its tags are
 * the runner's record (src/config/runner-tags.ts): the Lambdas read the runner from them, and the stack's one
 * HostReadPolicy lets a host role read it when the role carries the same `gitlab-runner-rotator:host-group`.
 *
 * The template never holds a token: Secrets Manager generates a placeholder `{"adopted":false,…}` and
 * adoption (`rotator adopt`) stores the real token as a new version. Encryption uses the AWS managed key
 * `aws/secretsmanager`, whose key policy lets principals of this account decrypt through Secrets Manager,
 * so no role here needs a `kms:` permission (AWS Secrets Manager User Guide, "Secret encryption and
 * decryption": docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html).
 *
 * The schedule is the L1 AWS::SecretsManager::RotationSchedule: aws-cdk-lib's addRotationSchedule would
 * grant the hook four actions on this one secret and add an invoke permission per secret, which at a
 * thousand runners no role policy can hold; the stack grants the hook once, on the managed prefix and tag.
 */
export class RunnerSecret extends Construct {
  readonly secret: secretsmanager.Secret;
  readonly rotationSchedule: secretsmanager.CfnRotationSchedule;

  constructor(scope: Construct, id: string, props: RunnerSecretProps) {
    super(scope, id);
    const { runner } = props;
    this.secret = new secretsmanager.Secret(this, 'Secret', {
      secretName: runner.secretId,
      description: `GitLab runner authentication token of runner "${runner.name}" (id ${runner.runnerId} at ${runner.gitlabUrl}), rotated by gitlab-runner-token-rotator`,
      generateSecretString: {
        secretStringTemplate: JSON.stringify({ adopted: false, runner_id: runner.runnerId, url: runner.gitlabUrl }),
        generateStringKey: 'placeholder',
        excludePunctuation: true,
        passwordLength: 32,
      },
      // It holds a live credential that every host of the runner boots from: never deleted with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const [key, value] of Object.entries(runnerTags(runner))) Tags.of(this.secret).add(key, value);

    this.rotationSchedule = new secretsmanager.CfnRotationSchedule(this, 'Rotation', {
      secretId: this.secret.secretArn,
      rotationLambdaArn: props.rotationLambdaArn,
      rotationRules: { automaticallyAfterDays: runner.rotateEveryDays },
      rotateImmediatelyOnUpdate: false,
    });
  }
}
