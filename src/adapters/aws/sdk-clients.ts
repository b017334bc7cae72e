/**
 * Every AWS SDK client the project builds, for the Lambdas (src/engines/) and the operator CLI
 * (src/cli/) alike: one retry policy, so a call behaves the same whoever makes it.
 *
 * The policy, `AWS_RETRY` = `{ maxAttempts: 6, retryMode: 'adaptive' }`:
 * - `retryMode: 'adaptive'`: the SDK's standard retries (throttling, 5xx, transient network errors, with
 *   full-jitter exponential back-off: a random wait up to 100 ms × 2^n, 500 ms × 2^n after a throttling
 *   error, each capped at 20 s), plus a client-side rate limiter that slows this client's requests after
 *   a throttling error and speeds up again as they succeed. SSM (ListCommandInvocations,
 *   GetCommandInvocation, SendCommand) and Secrets Manager answer fleet-wide bursts with
 *   ThrottlingException "Rate exceeded" (aws/aws-sdk-js-v3#4350, boto/botocore#993): backing the whole
 *   client off is what stops the burst, where retrying each request alone would only add to it. The
 *   limiter does nothing until a throttling error: a CLI call that is never throttled waits for nothing.
 * - `maxAttempts: 6` (the first attempt and 5 retries): at most about 15.5 s of back-off for a call that
 *   keeps being throttled (0.5 + 1 + 2 + 4 + 8 s, on average half that), 3.1 s for other retryable
 *   errors. That rides out a throttling burst without eating a Lambda's deadline (the rotation hook and
 *   the scan keep minutes in hand) or leaving an operator at the CLI waiting long. The SDK's retry quota
 *   (500 tokens, 5 a retry, 10 a timeout retry, per client) still stops retries when a service is down.
 * What still gets through (a ThrottlingException after 6 attempts) is the caller's: the SSM poll waits it
 * out (ssm-command.ts); elsewhere it is an error, retried by the next step or scan.
 *
 * Before this file the engines used these settings and the CLI `{ maxAttempts: 6 }` (standard mode) or
 * `{ maxAttempts: 5, retryMode: 'adaptive' }` (doctor --aws). One function per service, so a bundle
 * (esbuild, `sideEffects: false` in every @aws-sdk client) holds only the clients its function uses.
 * Region and credentials come from the environment as usual (AWS_REGION, the Lambda role, the operator's
 * profile). Tests fake AWS at the SDK boundary: aws-sdk-client-mock's `mockClient(SSMClient)` patches the
 * class's prototype, so clients built here are mocked too.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { InvalidInputError } from '../../core/errors.ts';

/** The one retry policy of every AWS SDK client (see the file's comment for why). */
export const AWS_RETRY = { maxAttempts: 6, retryMode: 'adaptive' } as const;

export function secretsManagerClient(): SecretsManagerClient {
  return new SecretsManagerClient({ ...AWS_RETRY });
}

export function ssmClient(): SSMClient {
  return new SSMClient({ ...AWS_RETRY });
}

export function snsClient(): SNSClient {
  return new SNSClient({ ...AWS_RETRY });
}

export function sqsClient(): SQSClient {
  return new SQSClient({ ...AWS_RETRY });
}

/** The DynamoDB document client (plain JavaScript values in and out) over a DynamoDBClient with AWS_RETRY. */
export function dynamoDbDocumentClient(): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient({ ...AWS_RETRY }));
}

/**
 * The SDK's errors for a machine with no AWS set up, as bad input that says what to set (exit 2 in the
 * CLI); any other error unchanged. Both come before any request is sent:
 * - no region: `Error("Region is missing")` from the region resolver (@smithy/core config-resolver);
 * - no credentials: `CredentialsProviderError` "Could not load credentials from any providers" from the
 *   default provider chain (@aws-sdk/credential-provider-node).
 */
export function awsSetupError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  if (error.message === 'Region is missing') {
    return new InvalidInputError('AWS region', 'is not set: set AWS_REGION (e.g. AWS_REGION=eu-west-1), or AWS_PROFILE to a profile with a region, to the region the stack is deployed in', { cause: error });
  }
  if (error.name === 'CredentialsProviderError') {
    return new InvalidInputError('AWS credentials', `none found (${error.message}): set AWS_PROFILE, or run \`aws sso login\` / \`aws configure\`, as a user with the stack's OperatorPolicyArn`, { cause: error });
  }
  return error;
}
