import { createHash } from 'node:crypto';

/**
 * Turns a synthesized CloudFormation template into the values a deployment would have: every `Ref`,
 * `Fn::GetAtt`, `Fn::Join`, `Fn::Select`, `Fn::Split` and `Fn::Sub` in it resolved to the physical names
 * and ARNs CloudFormation would give the resources in one account and region. Names the template sets
 * (a secret's Name, a document's Name) are used as they are; generated names follow CloudFormation's
 * `<stack>-<logical id>` form. An intrinsic or an attribute this resolver does not know throws, naming
 * it, so a policy is never evaluated half-resolved.
 */
export interface DeploymentSite {
  account: string;
  region: string;
  stackName: string;
}

/** Where the tests "deploy": the account and region every fake AWS service answers for. */
export const SITE: DeploymentSite = { account: '123456789012', region: 'eu-west-1', stackName: 'GitLabRunnerRotator' };

interface TemplateResource {
  Type: string;
  Properties?: Record<string, unknown>;
}

export interface Template {
  Resources: Record<string, TemplateResource>;
}

interface Physical {
  ref: string;
  attributes: Record<string, string>;
}

/** Six characters from the name, standing for the random suffix Secrets Manager appends to a secret's ARN. */
export function secretArnSuffix(name: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const digest = createHash('sha256').update(name).digest();
  return [...digest.subarray(0, 6)].map((byte) => alphabet[byte % alphabet.length]).join('');
}

/** The ARN Secrets Manager gives a secret of this name: `…:secret:<name>-<6 characters>`. */
export function secretArnOf(site: DeploymentSite, name: string): string {
  return `arn:aws:secretsmanager:${site.region}:${site.account}:secret:${name}-${secretArnSuffix(name)}`;
}

function keyId(logicalId: string): string {
  const hex = createHash('sha256').update(logicalId).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function physicalOf(site: DeploymentSite, logicalId: string, resource: TemplateResource): Physical {
  const { account, region } = site;
  const props = resource.Properties ?? {};
  const named = (property: string): string => (typeof props[property] === 'string' ? (props[property] as string) : `${site.stackName}-${logicalId}`);
  switch (resource.Type) {
    case 'AWS::SecretsManager::Secret': {
      const arn = secretArnOf(site, named('Name'));
      return { ref: arn, attributes: { Id: arn } };
    }
    case 'AWS::Lambda::Function': {
      const name = named('FunctionName');
      return { ref: name, attributes: { Arn: `arn:aws:lambda:${region}:${account}:function:${name}` } };
    }
    case 'AWS::IAM::Role': {
      const name = named('RoleName');
      return { ref: name, attributes: { Arn: `arn:aws:iam::${account}:role/${name}`, RoleId: `AROA${logicalId.toUpperCase().slice(0, 17)}` } };
    }
    case 'AWS::IAM::ManagedPolicy':
      return { ref: `arn:aws:iam::${account}:policy/${named('ManagedPolicyName')}`, attributes: {} };
    case 'AWS::IAM::Policy':
      return { ref: named('PolicyName'), attributes: {} };
    case 'AWS::DynamoDB::Table': {
      const name = named('TableName');
      return { ref: name, attributes: { Arn: `arn:aws:dynamodb:${region}:${account}:table/${name}` } };
    }
    case 'AWS::SSM::Document':
      return { ref: named('Name'), attributes: {} };
    case 'AWS::SNS::Topic': {
      const arn = `arn:aws:sns:${region}:${account}:${named('TopicName')}`;
      return { ref: arn, attributes: { TopicArn: arn } };
    }
    case 'AWS::KMS::Key': {
      const id = keyId(logicalId);
      return { ref: id, attributes: { Arn: `arn:aws:kms:${region}:${account}:key/${id}`, KeyId: id } };
    }
    case 'AWS::Logs::LogGroup': {
      const name = named('LogGroupName');
      return { ref: name, attributes: { Arn: `arn:aws:logs:${region}:${account}:log-group:${name}:*` } };
    }
    case 'AWS::SQS::Queue': {
      const name = named('QueueName');
      return { ref: `https://sqs.${region}.amazonaws.com/${account}/${name}`, attributes: { Arn: `arn:aws:sqs:${region}:${account}:${name}`, QueueName: name } };
    }
    case 'AWS::Events::Rule': {
      const name = named('Name');
      return { ref: name, attributes: { Arn: `arn:aws:events:${region}:${account}:rule/${name}` } };
    }
    case 'AWS::CloudWatch::Alarm': {
      const name = named('AlarmName');
      return { ref: name, attributes: { Arn: `arn:aws:cloudwatch:${region}:${account}:alarm:${name}` } };
    }
    default:
      return { ref: `${site.stackName}-${logicalId}`, attributes: {} };
  }
}

export class CfnResolver {
  private readonly physical = new Map<string, Physical>();

  /** `parameters`: a nested stack's parameter values, as its parent's AWS::CloudFormation::Stack passes them (resolved). */
  constructor(
    private readonly site: DeploymentSite,
    readonly template: Template,
    private readonly parameters: Record<string, string> = {},
  ) {
    for (const [logicalId, resource] of Object.entries(template.Resources)) this.physical.set(logicalId, physicalOf(site, logicalId, resource));
  }

  /** The value of `Ref` to a resource or pseudo parameter. */
  ref(name: string): string {
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': this.site.region,
      'AWS::AccountId': this.site.account,
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': this.site.stackName,
    };
    const value = pseudo[name] ?? this.parameters[name] ?? this.physical.get(name)?.ref;
    if (value === undefined) throw new Error(`cfn-resolver: Ref to unknown ${name}`);
    return value;
  }

  getAtt(logicalId: string, attribute: string): string {
    const value = this.physical.get(logicalId)?.attributes[attribute];
    if (value === undefined) throw new Error(`cfn-resolver: Fn::GetAtt ${logicalId}.${attribute} is not modelled`);
    return value;
  }

  /** The value with every intrinsic function resolved. */
  resolve(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    const [key, argument] = entries[0] ?? [];
    if (entries.length === 1 && key !== undefined && (key === 'Ref' || key.startsWith('Fn::'))) return this.intrinsic(key, argument);
    return Object.fromEntries(entries.map(([k, v]) => [k, this.resolve(v)]));
  }

  private intrinsic(name: string, argument: unknown): unknown {
    switch (name) {
      case 'Ref':
        return this.ref(argument as string);
      case 'Fn::GetAtt': {
        const [logicalId, attribute] = typeof argument === 'string' ? (argument.split('.') as [string, string]) : (argument as [string, string]);
        return this.getAtt(logicalId, attribute);
      }
      case 'Fn::Join': {
        const [delimiter, items] = argument as [string, unknown[]];
        return (this.resolve(items) as unknown[]).map(String).join(delimiter);
      }
      case 'Fn::Select': {
        const [index, items] = argument as [number | string, unknown];
        return (this.resolve(items) as unknown[])[Number(index)];
      }
      case 'Fn::Split': {
        const [delimiter, source] = argument as [string, unknown];
        return String(this.resolve(source)).split(delimiter);
      }
      case 'Fn::Sub': {
        const [text, variables] = typeof argument === 'string' ? [argument, {}] : (argument as [string, Record<string, unknown>]);
        return text.replace(/\$\{([^}]+)\}/g, (_, variable: string) => {
          if (variable in variables) return String(this.resolve(variables[variable]));
          const [logicalId, attribute] = variable.split('.');
          return attribute === undefined ? this.ref(variable) : this.getAtt(logicalId ?? '', attribute);
        });
      }
      default:
        throw new Error(`cfn-resolver: ${name} is not modelled`);
    }
  }
}
