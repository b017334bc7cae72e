import { CfnOutput, Duration, RemovalPolicy, Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { MANAGED_SECRET_TAG_KEY, type AwsManagedRunner } from '../../src/config/aws-fleet-config.ts';

export interface RunnerSecretProps {
  runner: AwsManagedRunner;
  rotationLambda: lambda.IFunction;
}

/**
 * One runner's token secret, named `<secretPrefix><runner name>`, with its rotation schedule and the
 * policy its hosts need to fetch it.
 *
 * The template never holds a token: Secrets Manager generates a placeholder `{"adopted":false,…}` and
 * adoption (`rotator adopt`) stores the real token as a new version. Encryption uses the AWS managed key
 * `aws/secretsmanager`, whose key policy lets principals of this account decrypt through Secrets Manager,
 * so no role here needs a `kms:` permission (AWS Secrets Manager User Guide, "Secret encryption and
 * decryption": docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html).
 */
export class RunnerSecret extends Construct {
  readonly secret: secretsmanager.Secret;
  /** Attach to the instance role of this runner's hosts: GetSecretValue on this one secret only. */
  readonly hostReadPolicy: iam.ManagedPolicy;

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
    Tags.of(this.secret).add(MANAGED_SECRET_TAG_KEY, runner.name);

    // Also grants the rotation function DescribeSecret/GetSecretValue/PutSecretValue/UpdateSecretVersionStage
    // on this secret, and lets secretsmanager.amazonaws.com invoke it (aws-cdk-lib RotationSchedule).
    this.secret.addRotationSchedule('Rotation', {
      rotationLambda: props.rotationLambda,
      automaticallyAfter: Duration.days(runner.rotateEveryDays),
      rotateImmediatelyOnUpdate: false,
    });

    this.hostReadPolicy = new iam.ManagedPolicy(this, 'HostReadPolicy', {
      description: `Attach to the instance role of the hosts of GitLab runner "${runner.name}": read its token secret, nothing else`,
      statements: [
        new iam.PolicyStatement({ sid: 'ReadRunnerTokenSecret', actions: ['secretsmanager:GetSecretValue'], resources: [this.secret.secretArn] }),
      ],
    });

    new CfnOutput(this, 'SecretArn', { description: `Token secret of runner ${runner.name}`, value: this.secret.secretArn });
    new CfnOutput(this, 'HostReadPolicyArn', {
      description: `Attach to the instance role of runner ${runner.name}'s hosts`,
      value: this.hostReadPolicy.managedPolicyArn,
    });
  }
}
