/**
 * GitLab's offset pagination: `page` (default 1) and `per_page` (default 20, at most 100), the
 * X-Page / X-Per-Page / X-Total / X-Total-Pages / X-Next-Page / X-Prev-Page headers (empty when
 * there is none) and a Link header with rel="prev", "next", "first" and "last".
 */
import { ParamError } from './request-params.ts';
import { badParam } from './replies.ts';

export const DEFAULT_PER_PAGE = 20;
export const MAX_PER_PAGE = 100;

export interface Page<T> {
  items: T[];
  headers: Record<string, string>;
}

/** `linkBase` is the absolute url of the list without query (e.g. `http://127.0.0.1:1234/api/v4/runners/all`). */
export function paginate<T>(all: readonly T[], query: URLSearchParams, linkBase: string): Page<T> {
  const page = Math.max(1, integerParam(query, 'page') ?? 1);
  const requested = integerParam(query, 'per_page') ?? DEFAULT_PER_PAGE;
  const perPage = requested < 1 ? DEFAULT_PER_PAGE : Math.min(MAX_PER_PAGE, requested);
  const total = all.length;
  const totalPages = Math.max(1, Math.ceil(total / perPage));
  const start = (page - 1) * perPage;
  const items = all.slice(start, start + perPage);
  const next = page < totalPages ? page + 1 : undefined;
  const prev = page > 1 ? Math.min(page - 1, totalPages) : undefined;

  const link = (target: number, rel: string): string => {
    const search = new URLSearchParams(query);
    search.delete('page');
    search.delete('per_page');
    search.append('page', String(target));
    search.append('per_page', String(perPage));
    return `<${linkBase}?${search.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (prev !== undefined) links.push(link(prev, 'prev'));
  if (next !== undefined) links.push(link(next, 'next'));
  links.push(link(1, 'first'), link(totalPages, 'last'));

  return {
    items,
    headers: {
      'X-Page': String(page),
      'X-Per-Page': String(perPage),
      'X-Total': String(total),
      'X-Total-Pages': String(totalPages),
      'X-Next-Page': next === undefined ? '' : String(next),
      'X-Prev-Page': prev === undefined ? '' : String(prev),
      Link: links.join(', '),
    },
  };
}

function integerParam(query: URLSearchParams, name: string): number | undefined {
  const raw = query.get(name);
  if (raw === null || raw === '') return undefined;
  if (!/^-?\d+$/.test(raw.trim())) throw new ParamError(badParam(name, 'is invalid'));
  return Number(raw);
}
