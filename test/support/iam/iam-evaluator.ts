import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import type { Deployment, DeployedPrincipal, PolicyDocument, PrincipalName } from './deployment.ts';
import { AWS_MANAGED_SECRETS_KEY_ID, awsManagedSecretsKeyPolicy, type IamRequest } from './iam-requests.ts';

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

export interface Verdict {
  request: IamRequest;
  decision: Decision;
}

/**
 * Judges requests with @cloud-copilot/iam-simulate (identity and resource policies, same-account rules,
 * KMS key policies, every condition operator; it also refuses actions, resource ARNs and context keys that
 * the service does not define). The principal's policies come from the deployment unless `principals`
 * replaces them (the tests that drop one statement at a time).
 */
export class IamEvaluator {
  private readonly cache = new Map<string, Decision>();

  constructor(
    readonly deployment: Deployment,
    private readonly principals: Map<PrincipalName, DeployedPrincipal> = deployment.principals,
  ) {}

  /** The same deployment with other identity policies for some principals. */
  withPrincipals(changed: Map<PrincipalName, DeployedPrincipal>): IamEvaluator {
    return new IamEvaluator(this.deployment, new Map([...this.principals, ...changed]));
  }

  resourcePolicy(resource: string): PolicyDocument | undefined {
    const { region, account } = this.deployment.site;
    if (resource === `arn:aws:kms:${region}:${account}:${AWS_MANAGED_SECRETS_KEY_ID}`) return awsManagedSecretsKeyPolicy(region, account) as PolicyDocument;
    return this.deployment.resourcePolicies.get(resource);
  }

  async decide(request: IamRequest): Promise<Decision> {
    const key = JSON.stringify([request.principal, request.action, request.resource, request.context]);
    const cached = this.cache.get(key);
    if (cached) return cached;
    const { account } = this.deployment.site;
    const service = request.principal.endsWith('.amazonaws.com');
    const principal = service ? undefined : this.principals.get(request.principal);
    if (!service && !principal) throw new Error(`${request.because}: the deployment has no principal ${request.principal}`);
    const resourcePolicy = this.resourcePolicy(request.resource);
    const simulation: Simulation = {
      request: {
        principal: principal?.arn ?? request.principal,
        action: request.action,
        resource: { resource: request.resource, accountId: account },
        contextVariables: {
          'aws:SecureTransport': 'true',
          ...(principal ? { 'aws:PrincipalArn': principal.arn, 'aws:PrincipalAccount': account } : {}),
          ...Object.fromEntries(Object.entries(principal?.tags ?? {}).map(([key, value]) => [`aws:PrincipalTag/${key}`, value])),
          ...request.context,
        },
      },
      identityPolicies: principal?.policies.map((p) => ({ name: p.name, policy: p.policy })) ?? [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(resourcePolicy ? { resourcePolicy } : {}),
    };
    const result = await runSimulation(simulation, {});
    if (result.resultType === 'error') throw new Error(`${request.because}: the evaluator refused ${request.action} on ${request.resource}: ${JSON.stringify(result.errors)}`);
    const decision = result.overallResult as Decision;
    this.cache.set(key, decision);
    return decision;
  }

  async judge(requests: readonly IamRequest[]): Promise<Verdict[]> {
    return Promise.all(unique(requests).map(async (request) => ({ request, decision: await this.decide(request) })));
  }
}

/** One request per principal, action, resource and context (the first call that needed it names it). */
export function unique(requests: readonly IamRequest[]): IamRequest[] {
  const seen = new Map<string, IamRequest>();
  for (const r of requests) {
    const key = JSON.stringify([r.principal, r.action, r.resource, r.context]);
    if (!seen.has(key)) seen.set(key, r);
  }
  return [...seen.values()];
}

/** A readable line per refused request, for assertion messages. */
export function describeRefusals(verdicts: readonly Verdict[]): string[] {
  return verdicts.filter((v) => v.decision !== 'Allowed').map((v) => `${v.decision}: ${v.request.principal} ${v.request.action} on ${v.request.resource} (${v.request.because})`);
}
