/**
 * The one AWS SDK client factory: every client has the same retry policy, clients it builds stay fakeable
 * with aws-sdk-client-mock at the class (mockClient(SSMClient) patches the prototype), and no other file
 * of src/ or functions/ builds an SDK client of its own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ListCommandInvocationsCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AWS_RETRY, dynamoDbDocumentClient, secretsManagerClient, snsClient, sqsClient, ssmClient } from '../../../src/adapters/aws/sdk-clients.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('sdk-clients', () => {
  const mocks: Array<{ restore(): void }> = [];
  afterEach(() => {
    for (const m of mocks.splice(0)) m.restore();
  });

  it('builds every client with the one retry policy: 6 attempts, adaptive', async () => {
    expect(AWS_RETRY).toEqual({ maxAttempts: 6, retryMode: 'adaptive' });
    for (const client of [secretsManagerClient(), ssmClient(), snsClient(), sqsClient(), dynamoDbDocumentClient()]) {
      expect(await client.config.maxAttempts()).toBe(6);
      expect(client.config.retryMode).toBe('adaptive');
      expect((await client.config.retryStrategy()) as { mode?: string }).toMatchObject({ mode: 'adaptive' });
    }
  });

  it('clients it builds are faked by mockClient on the class (aws-sdk-client-mock patches the prototype)', async () => {
    const ssm = mockClient(SSMClient);
    const secrets = mockClient(SecretsManagerClient);
    const dynamodb = mockClient(DynamoDBDocumentClient);
    mocks.push(ssm, secrets, dynamodb);
    ssm.on(ListCommandInvocationsCommand).resolves({ CommandInvocations: [{ InstanceId: 'i-1', Status: 'Success' }] });
    secrets.on(GetSecretValueCommand).resolves({ SecretString: 'x' });
    dynamodb.on(GetCommand).resolves({ Item: { pk: 'a' } });

    expect((await ssmClient().send(new ListCommandInvocationsCommand({ CommandId: 'c' }))).CommandInvocations?.[0]?.InstanceId).toBe('i-1');
    expect((await secretsManagerClient().send(new GetSecretValueCommand({ SecretId: 's' }))).SecretString).toBe('x');
    expect((await dynamoDbDocumentClient().send(new GetCommand({ TableName: 't', Key: { pk: 'a' } }))).Item).toEqual({ pk: 'a' });
    expect(ssm.commandCalls(ListCommandInvocationsCommand)).toHaveLength(1);
  });

  it('no other file of src/ or functions/ builds an SDK client or sets SDK retries', () => {
    const offenders = [...sourceFiles(join(ROOT, 'src')), ...sourceFiles(join(ROOT, 'functions'))]
      .filter((file) => !file.endsWith(join('aws', 'sdk-clients.ts')))
      .filter((file) => /new (SSM|SecretsManager|DynamoDB|SNS|SQS)Client\(|retryMode/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(ROOT, file));
    expect(offenders).toEqual([]);
  });
});
