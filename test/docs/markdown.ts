import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root folder (this file is test/docs/markdown.ts). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A relative link of a markdown file: where it is and what it points at. */
export interface MarkdownLink {
  line: number;
  /** The target as written, e.g. `docs/operations.md#runbook-host-missed` or `#safety`. */
  target: string;
}

/** A link whose file or anchor does not exist: `file:line target: reason`. */
export type BrokenLink = string;

/**
 * GitHub's heading anchor: the heading's text lower-cased, every character that is not a letter, a digit,
 * a space, `-` or `_` dropped, and each space turned into `-` (github-slugger's rules). Inline markup is
 * rendered first: code spans keep their text, links their label, HTML tags go.
 */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/`([^`]*)`/g, '$1')
    .replace(/<[^>]+>/g, '');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The lines of a markdown text with fenced code blocks blanked (a `#` or `[x](y)` in code is no heading or link). */
function proseLines(markdown: string): string[] {
  let fence: string | undefined;
  return markdown.split('\n').map((line) => {
    const opening = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence === undefined && opening) {
      fence = opening[1]?.[0];
      return '';
    }
    if (fence !== undefined) {
      if (new RegExp(`^ {0,3}\\${fence}{3,}\\s*$`).test(line)) fence = undefined;
      return '';
    }
    return line;
  });
}

/**
 * Every anchor a markdown text offers: its headings' slugs (a repeated slug gets `-1`, `-2`, … as on GitHub)
 * and the explicit `<a id="…">` / `<a name="…">` anchors.
 */
export function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(markdown)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
    if (heading) {
      const slug = githubSlug(heading[1] ?? '');
      const count = seen.get(slug) ?? 0;
      seen.set(slug, count + 1);
      anchors.add(count === 0 ? slug : `${slug}-${count}`);
    }
    for (const explicit of line.matchAll(/<a\s+(?:[^>]*\s)?(?:id|name)\s*=\s*["']([^"']+)["'][^>]*>/gi)) {
      anchors.add(explicit[1] ?? '');
    }
  }
  return anchors;
}

/**
 * The relative links of a markdown text: `[text](target)` and `![alt](target)` outside code, with no
 * scheme (http:, https:, mailto:, …). Code spans are blanked first, so a link label may hold one.
 */
export function relativeLinksOf(markdown: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  proseLines(markdown).forEach((raw, index) => {
    const line = raw.replace(/`[^`]*`/g, 'code');
    for (const match of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
      const target = match[1] ?? '';
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      links.push({ line: index + 1, target });
    }
  });
  return links;
}

/**
 * What is wrong with the relative links of one markdown file of the repository (a path from the root): a
 * target file that does not exist, or an anchor the target .md file does not have. Empty when all is well.
 */
export function brokenLinksOf(file: string, markdown: string = readFileSync(resolve(ROOT, file), 'utf8')): BrokenLink[] {
  const broken: BrokenLink[] = [];
  const from = dirname(resolve(ROOT, file));
  for (const { line, target } of relativeLinksOf(markdown)) {
    const hash = target.indexOf('#');
    const pathPart = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
    const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const path = pathPart === '' ? resolve(ROOT, file) : pathPart.startsWith('/') ? resolve(ROOT, `.${pathPart}`) : resolve(from, pathPart);
    const where = `${file}:${line} ${target}`;
    if (relative(ROOT, path).startsWith('..')) {
      broken.push(`${where}: leaves the repository`);
      continue;
    }
    if (!existsSync(path)) {
      broken.push(`${where}: no such file ${relative(ROOT, path)}`);
      continue;
    }
    if (anchor === undefined || anchor === '') continue;
    if (!path.endsWith('.md') || statSync(path).isDirectory()) {
      broken.push(`${where}: an anchor into a file that is not markdown`);
      continue;
    }
    const text = pathPart === '' ? markdown : readFileSync(path, 'utf8');
    if (!anchorsOf(text).has(anchor)) broken.push(`${where}: ${relative(ROOT, path)} has no anchor #${anchor}`);
  }
  return broken;
}

/** Whether `<file>#<anchor>` (a path from the repository's root) names an existing markdown file and anchor. */
export function resolvesInRepository(fileAndAnchor: string): boolean {
  return brokenLinksOf('README.md', `[link](/${fileAndAnchor})`).length === 0;
}
