import type { DeployedPrincipal, PolicyStatement, PrincipalName } from './deployment.ts';
import type { IamEvaluator } from './iam-evaluator.ts';
import type { IamRequest } from './iam-requests.ts';

/** One statement of a principal's identity policies, where it is, and what it is. */
export interface StatementRef {
  principal: PrincipalName;
  policy: string;
  index: number;
  statement: PolicyStatement;
  /** `<policy>#<index> (<sid or actions>)`: how reports name it. */
  label: string;
}

/** One action on one resource, as one Allow statement grants it (its conditions kept). */
export interface Grant {
  from: StatementRef;
  action: string;
  resource: string;
}

const list = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

export function statementsOf(name: PrincipalName, principal: DeployedPrincipal): StatementRef[] {
  return principal.policies.flatMap((p) =>
    p.policy.Statement.map((statement, index) => ({ principal: name, policy: p.name, index, statement, label: `${p.name}#${index} (${statement.Sid ?? list(statement.Action).join(', ')})` })),
  );
}

export function grantsOf(statement: StatementRef): Grant[] {
  if (statement.statement.Effect !== 'Allow') return [];
  return list(statement.statement.Action).flatMap((action) => list(statement.statement.Resource).map((resource) => ({ from: statement, action, resource })));
}

/** The principal with one statement taken out. */
export function without(principal: DeployedPrincipal, statement: StatementRef): DeployedPrincipal {
  return {
    ...principal,
    policies: principal.policies.map((p) => (p.name === statement.policy ? { ...p, policy: { ...p.policy, Statement: p.policy.Statement.filter((_, i) => i !== statement.index) } } : p)),
  };
}

function actionPattern(action: string): RegExp {
  return new RegExp(`^${action.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');
}

/**
 * The recorded requests this grant is what allows: allowed when the principal holds only this grant, and
 * not allowed when it holds nothing (so a resource policy alone, like aws/secretsmanager's, does not count).
 */
export async function requestsUsing(grant: Grant, requests: readonly IamRequest[], evaluator: IamEvaluator, principal: DeployedPrincipal): Promise<IamRequest[]> {
  const pattern = actionPattern(grant.action);
  const candidates = requests.filter((r) => r.principal === grant.from.principal && pattern.test(r.action));
  const only = evaluator.withPrincipals(
    new Map([[grant.from.principal, { ...principal, policies: [{ name: 'one-grant', policy: { Version: '2012-10-17', Statement: [{ ...grant.from.statement, Action: grant.action, Resource: grant.resource }] } }] }]]),
  );
  const none = evaluator.withPrincipals(new Map([[grant.from.principal, { ...principal, policies: [] }]]));
  const using: IamRequest[] = [];
  for (const request of candidates) {
    if ((await only.decide(request)) === 'Allowed' && (await none.decide(request)) !== 'Allowed') using.push(request);
  }
  return using;
}
