/**
 * The route table of the simulated REST API v4 and what a handler gets to work with. Handlers are
 * synchronous and O(1) except the list endpoints; the dispatcher in gitlab-simulator.ts adds
 * latency, faults, the rate limit and the Date header around them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Params } from './request-params.ts';
import type { Reply } from './replies.ts';
import type { SimulatorState } from './simulator-state.ts';
import { runnerTokenRoutes } from './runner-token-routes.ts';
import { accessTokenRoutes } from './access-token-routes.ts';

export const API_PREFIX = '/api/v4';

export interface SimulatorSettings {
  version: string;
  revision: string;
  legacyRegistrationEnabled: boolean;
  /** The registration token legacy `POST /runners` accepts; undefined accepts none. */
  registrationToken: string | undefined;
}

export interface RequestContext {
  state: SimulatorState;
  settings: SimulatorSettings;
  /** `:name` segments of the route, e.g. `{ id: '42' }`. */
  pathParams: Record<string, string>;
  query: URLSearchParams;
  /** Query merged with the body (the body wins). */
  params: Params;
  headers: IncomingHttpHeaders;
  remoteAddress: string;
  /** Absolute url of the requested path without query, for Link headers. */
  selfUrl: string;
}

export type Handler = (context: RequestContext) => Reply;

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path below /api/v4; `:id` matches digits only. */
  pattern: string;
  handler: Handler;
  /** A token reset: the one kind of request `faults.dropNextReset()` applies to. */
  resetsToken?: boolean;
}

export interface MatchedRoute {
  /** `METHOD /pattern`, the key of stats.byRoute. */
  key: string;
  spec: RouteSpec;
  pathParams: Record<string, string>;
}

interface CompiledRoute {
  key: string;
  spec: RouteSpec;
  segments: string[];
}

export class Router {
  private readonly byMethod = new Map<string, CompiledRoute[]>();

  constructor(routes: readonly RouteSpec[]) {
    for (const spec of routes) {
      const list = this.byMethod.get(spec.method) ?? [];
      list.push({ key: `${spec.method} ${spec.pattern}`, spec, segments: spec.pattern.split('/').slice(1) });
      this.byMethod.set(spec.method, list);
    }
  }

  /** `pathname` is the full request path (`/api/v4/...`). */
  match(method: string, pathname: string): MatchedRoute | undefined {
    if (!pathname.startsWith(`${API_PREFIX}/`)) return undefined;
    const parts = pathname.slice(API_PREFIX.length).replace(/\/+$/, '').split('/').slice(1);
    for (const route of this.byMethod.get(method) ?? []) {
      const pathParams = matchSegments(route.segments, parts);
      if (pathParams) return { key: route.key, spec: route.spec, pathParams };
    }
    return undefined;
  }
}

function matchSegments(segments: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let index = 0; index < segments.length; index++) {
    const segment = segments[index]!;
    const part = parts[index]!;
    if (segment.startsWith(':')) {
      if (!/^\d+$/.test(part)) return undefined;
      params[segment.slice(1)] = part;
    } else if (segment !== part) {
      return undefined;
    }
  }
  return params;
}

export function createRouter(): Router {
  return new Router([...runnerTokenRoutes, ...accessTokenRoutes]);
}
