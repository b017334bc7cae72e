import type { Deployment, PrincipalName } from './deployment.ts';
import type { RecordedCall } from './recorded-calls.ts';

/** One authorization AWS makes: principal, action, resource and the request's context keys. */
export interface IamRequest {
  principal: PrincipalName;
  action: string;
  resource: string;
  context: Record<string, string | string[]>;
  /** The call it comes from, for reports: e.g. `ScanExpiry RotateSecretCommand`. */
  because: string;
}

/** An instance SSM can target: its id and EC2 tags (what `ssm:resourceTag/<key>` is tested against). */
export interface TargetInstance {
  instanceId: string;
  tags: Record<string, string>;
}

/**
 * Every authorization a call needs, as the AWS documentation of each API names them, not only the
 * action itself:
 * - Secrets Manager (API reference, and User Guide "Secret encryption and decryption"): GetSecretValue
 *   needs kms:Decrypt, PutSecretValue kms:GenerateDataKey, on the secret's key through Secrets Manager
 *   (`kms:ViaService`). Our secrets use the AWS managed key `aws/secretsmanager` (AWS_MANAGED_SECRETS_KEY).
 *   RotateSecret: "You also need lambda:InvokeFunction permissions on the rotation function", and then
 *   Secrets Manager itself invokes the function (its resource policy, `aws:SourceAccount`).
 * - SSM SendCommand (Systems Manager User Guide, "Restricting Run Command access based on tags"): the
 *   document and every target instance, with `ssm:resourceTag/<key>` per instance tag; tag targets reach
 *   the instances that carry the tag.
 * - SNS Publish to an encrypted topic (SNS Developer Guide, "Managing Amazon SNS encryption keys"): the
 *   publisher needs kms:GenerateDataKey and kms:Decrypt on the topic's key.
 * - DynamoDB: the Document client's commands are the item actions; TransactWriteItems is authorized
 *   per item as PutItem / UpdateItem / DeleteItem / ConditionCheckItem (DynamoDB Developer Guide,
 *   "Using IAM with DynamoDB transactions").
 * A call this table does not know throws: a new call must be described before it is judged.
 */
export function iamRequestsOf(
  call: RecordedCall,
  deployment: Deployment,
  instances: readonly TargetInstance[],
  /** A secret's tags at the time of the request (default: as the stack created it). */
  secretTags: (arn: string) => Record<string, string> | undefined = (arn) => deployment.secretTags.get(arn),
): IamRequest[] {
  const { region, account } = deployment.site;
  const because = `${call.principal} ${call.command}`;
  const input = call.input;
  // A request on a secret the stack created carries that secret's tags (aws:ResourceTag/<key>).
  const resourceTags = (resource: string) =>
    Object.fromEntries(Object.entries(secretTags(resource) ?? {}).map(([key, value]) => [`aws:ResourceTag/${key}`, value]));
  const request = (action: string, resource: string, context: IamRequest['context'] = {}): IamRequest => ({
    principal: call.principal,
    action,
    resource,
    context: action.startsWith('secretsmanager:') ? { ...resourceTags(resource), ...context } : context,
    because,
  });
  const viaService = (service: string) => ({ 'kms:ViaService': `${service}.${region}.amazonaws.com`, 'kms:CallerAccount': account });
  const secret = () => deployment.secretArn(String(input.SecretId));
  const secretsKey = () => `arn:aws:kms:${region}:${account}:${AWS_MANAGED_SECRETS_KEY_ID}`;
  const table = (name: unknown) => `arn:aws:dynamodb:${region}:${account}:table/${String(name)}`;

  switch (`${call.service}:${call.command}`) {
    case 'secretsmanager:DescribeSecretCommand':
      return [request('secretsmanager:DescribeSecret', secret())];
    case 'secretsmanager:GetSecretValueCommand': {
      const version: Record<string, string> = input.VersionId !== undefined ? { 'secretsmanager:VersionId': String(input.VersionId) } : { 'secretsmanager:VersionStage': String(input.VersionStage ?? 'AWSCURRENT') };
      return [request('secretsmanager:GetSecretValue', secret(), version), request('kms:Decrypt', secretsKey(), { ...viaService('secretsmanager'), 'kms:EncryptionContext:SecretARN': secret() })];
    }
    case 'secretsmanager:PutSecretValueCommand':
      return [request('secretsmanager:PutSecretValue', secret()), request('kms:GenerateDataKey', secretsKey(), { ...viaService('secretsmanager'), 'kms:EncryptionContext:SecretARN': secret() })];
    case 'secretsmanager:UpdateSecretVersionStageCommand':
      return [request('secretsmanager:UpdateSecretVersionStage', secret())];
    case 'secretsmanager:ListSecretsCommand':
      return [request('secretsmanager:ListSecrets', '*')];
    case 'secretsmanager:RotateSecretCommand': {
      const rotationFunction = deployment.rotationFunctionOf.get(secret());
      if (!rotationFunction) throw new Error(`${because}: ${secret()} has no rotation function in the stack`);
      return [
        request('secretsmanager:RotateSecret', secret()),
        request('lambda:InvokeFunction', rotationFunction),
        { principal: 'secretsmanager.amazonaws.com', action: 'lambda:InvokeFunction', resource: rotationFunction, context: { 'aws:SourceAccount': account, 'aws:SourceArn': secret() }, because: `${because} (Secrets Manager invokes the rotation function)` },
      ];
    }
    case 'ssm:SendCommandCommand': {
      const document = String(input.DocumentName);
      const documentArn = document.startsWith('arn:') ? document : `arn:aws:ssm:${region}:${account}:document/${document}`;
      return [request('ssm:SendCommand', documentArn), ...targetsOf(input, instances).map((i) => request('ssm:SendCommand', instanceArn(region, account, i.instanceId), tagContext(i)))];
    }
    case 'ssm:ListCommandsCommand':
      return [request('ssm:ListCommands', '*')];
    case 'ssm:ListCommandInvocationsCommand':
      return [request('ssm:ListCommandInvocations', '*')];
    case 'ssm:GetCommandInvocationCommand':
      return [request('ssm:GetCommandInvocation', '*')];
    case 'sns:PublishCommand': {
      const topic = String(input.TopicArn);
      const key = topic === deployment.alertTopicArn ? deployment.alertKeyArn : undefined;
      if (!key) throw new Error(`${because}: ${topic} is not the stack's alert topic`);
      return [request('sns:Publish', topic), request('kms:GenerateDataKey', key, viaService('sns')), request('kms:Decrypt', key, viaService('sns'))];
    }
    case 'dynamodb:GetCommand':
      return [request('dynamodb:GetItem', table(input.TableName))];
    case 'dynamodb:PutCommand':
      return [request('dynamodb:PutItem', table(input.TableName))];
    case 'dynamodb:DeleteCommand':
      return [request('dynamodb:DeleteItem', table(input.TableName))];
    case 'dynamodb:UpdateCommand':
      return [request('dynamodb:UpdateItem', table(input.TableName))];
    case 'dynamodb:QueryCommand':
      return [request('dynamodb:Query', table(input.TableName))];
    case 'dynamodb:TransactWriteCommand': {
      const items = (input.TransactItems as Array<Record<string, { TableName?: string }>> | undefined) ?? [];
      const actions: Record<string, string> = { Put: 'dynamodb:PutItem', Update: 'dynamodb:UpdateItem', Delete: 'dynamodb:DeleteItem', ConditionCheck: 'dynamodb:ConditionCheckItem' };
      return items.flatMap((item) => Object.entries(item).map(([kind, op]) => request(actions[kind] ?? `dynamodb:${kind}`, table(op.TableName))));
    }
    // SQS API reference, SendMessageBatch: "the permission for this action is sqs:SendMessage"; over TLS
    // (the queue policy denies aws:SecureTransport false). SQS-managed encryption needs no kms: permission.
    case 'sqs:SendMessageCommand':
    case 'sqs:SendMessageBatchCommand':
      return [request('sqs:SendMessage', queueArnOf(String(input.QueueUrl)), { 'aws:SecureTransport': 'true' })];
    default:
      throw new Error(`${because}: no IAM description of ${call.service}:${call.command}; add it to iam-requests.ts from the API reference`);
  }
}

/** `https://sqs.<region>.amazonaws.com/<account>/<name>` → `arn:aws:sqs:<region>:<account>:<name>`. */
function queueArnOf(url: string): string {
  const match = /^https:\/\/sqs\.([a-z0-9-]+)\.amazonaws\.com\/(\d{12})\/([A-Za-z0-9_-]+)$/.exec(url);
  if (!match) throw new Error(`iam-requests: ${url} is not an SQS queue URL`);
  return `arn:aws:sqs:${match[1]}:${match[2]}:${match[3]}`;
}

/**
 * The AWS managed key `aws/secretsmanager` of the account (key id as an alias: the policy below names no key).
 * Its key policy is written by AWS in every account (`aws kms get-key-policy --key-id alias/aws/secretsmanager
 * --policy-name default`): principals of the account may use it only through Secrets Manager. That is why
 * no role of the stack holds a kms: permission for the runner secrets.
 */
export const AWS_MANAGED_SECRETS_KEY_ID = 'key/aaaaaaaa-0000-4000-8000-5ec7e75a9a9e';

export function awsManagedSecretsKeyPolicy(region: string, account: string) {
  const throughSecretsManager = { StringEquals: { 'kms:CallerAccount': account, 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } };
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'Allow access through AWS Secrets Manager for all principals in the account that are authorized to use AWS Secrets Manager',
        Effect: 'Allow',
        Principal: { AWS: '*' },
        Action: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:CreateGrant', 'kms:DescribeKey'],
        Resource: '*',
        Condition: throughSecretsManager,
      },
      {
        Sid: 'Allow access through AWS Secrets Manager for all principals in the account that are authorized to use AWS Secrets Manager',
        Effect: 'Allow',
        Principal: { AWS: '*' },
        Action: 'kms:GenerateDataKey*',
        Resource: '*',
        Condition: { StringEquals: { 'kms:CallerAccount': account }, StringLike: { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } },
      },
      {
        Sid: 'Allow direct access to key metadata to the account',
        Effect: 'Allow',
        Principal: { AWS: `arn:aws:iam::${account}:root` },
        Action: ['kms:Describe*', 'kms:Get*', 'kms:List*', 'kms:RevokeGrant'],
        Resource: '*',
      },
    ],
  };
}

function targetsOf(input: Record<string, unknown>, instances: readonly TargetInstance[]): TargetInstance[] {
  const tag = (input.Targets as Array<{ Key?: string; Values?: string[] }> | undefined)?.find((t) => t.Key?.startsWith('tag:'));
  if (tag) return instances.filter((i) => (tag.Values ?? []).includes(i.tags[tag.Key?.slice(4) ?? ''] ?? ''));
  const ids = (input.InstanceIds as string[] | undefined) ?? [];
  return ids.map((id) => instances.find((i) => i.instanceId === id) ?? { instanceId: id, tags: {} });
}

function instanceArn(region: string, account: string, id: string): string {
  return id.startsWith('mi-') ? `arn:aws:ssm:${region}:${account}:managed-instance/${id}` : `arn:aws:ec2:${region}:${account}:instance/${id}`;
}

function tagContext(instance: TargetInstance): Record<string, string> {
  return Object.fromEntries(Object.entries(instance.tags).map(([key, value]) => [`ssm:resourceTag/${key}`, value]));
}
