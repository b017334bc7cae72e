import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alertText, DEFAULT_RUNBOOK_DOCUMENT, runbookLink } from '../../src/core/alert-text.ts';
import { ALERT_KINDS, runbookAnchor, type Alert } from '../../src/core/alerts.ts';
import { anchorsOf, brokenLinksOf, githubSlug, relativeLinksOf, resolvesInRepository, ROOT } from './markdown.ts';

const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The documents a reader follows links through. */
const DOCUMENTS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
  'host/README.md',
  'src/simulator/README.md',
];

/** Every source file (below these folders) that may name a document section, e.g. a doctor finding's fix. */
function sourceFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts'))
    .map((name) => join(folder, name));
}

describe('githubSlug', () => {
  it.each([
    ['Alerts and runbook', 'alerts-and-runbook'],
    ['Doctor: why is this runner offline?', 'doctor-why-is-this-runner-offline'],
    ['`rotator migrate`: off a legacy registration token', 'rotator-migrate-off-a-legacy-registration-token'],
    ['Fleet-wide: `rotator doctor --aws RUNNER`', 'fleet-wide-rotator-doctor---aws-runner'],
    ['Converge: --unless-newer', 'converge---unless-newer'],
    ['The fleet is data, up to 10,000 runners', 'the-fleet-is-data-up-to-10000-runners'],
    ['How a rotation runs (and what it costs the hosts)', 'how-a-rotation-runs-and-what-it-costs-the-hosts'],
    ['snake_case — kept', 'snake_case--kept'],
  ])('turns the heading %j into the anchor %j, as GitHub does', (heading, slug) => {
    expect(githubSlug(heading)).toBe(slug);
  });
});

describe('the checker itself', () => {
  it('offers headings, numbered repeats and explicit anchors, and ignores headings in code', () => {
    const anchors = anchorsOf(['# Title', '## Steps', '## Steps', '<a id="runbook-x"></a>', '<a name="old"></a>', '```sh', '# a comment', '```'].join('\n'));
    expect([...anchors]).toEqual(['title', 'steps', 'steps-1', 'runbook-x', 'old']);
  });

  it('finds relative links outside code, with a code span in the label, and skips URLs', () => {
    const links = relativeLinksOf(['See [`x`](docs/a.md#b) and [web](https://example.com).', '```', '[no](in-code.md)', '```', '[self](#top)'].join('\n'));
    expect(links).toEqual([
      { line: 1, target: 'docs/a.md#b' },
      { line: 5, target: '#top' },
    ]);
  });

  it('reports a missing file, a missing anchor and a missing anchor of the same file', () => {
    const broken = brokenLinksOf('README.md', ['# Top', '[gone](docs/no-such-file.md)', '[bad](docs/operations.md#no-such-anchor)', '[self](#nowhere)', '[fine](#top)'].join('\n'));
    expect(broken).toEqual([
      'README.md:2 docs/no-such-file.md: no such file docs/no-such-file.md',
      'README.md:3 docs/operations.md#no-such-anchor: docs/operations.md has no anchor #no-such-anchor',
      'README.md:4 #nowhere: README.md has no anchor #nowhere',
    ]);
  });
});

describe('the documentation', () => {
  it('includes the README, every file of docs/ and the READMEs of host/ and the simulator', () => {
    expect(DOCUMENTS).toEqual(expect.arrayContaining(['README.md', 'docs/operations.md', 'docs/aws-deployment.md', 'docs/rotation.md', 'docs/performance.md', 'docs/development.md', 'host/README.md', 'src/simulator/README.md']));
  });

  it.each(DOCUMENTS)('%s links only to files and anchors that exist', (file) => {
    expect(brokenLinksOf(file)).toEqual([]);
  });

  it('README.md links to every document of docs/', () => {
    const targets = relativeLinksOf(read('README.md')).map((link) => link.target.replace(/#.*$/, ''));
    for (const file of DOCUMENTS.filter((f) => f.startsWith('docs/'))) expect(targets).toContain(file);
  });

  it('README.md stays under 200 lines', () => {
    expect(read('README.md').trimEnd().split('\n').length).toBeLessThan(200);
  });
});

describe('the runbook', () => {
  const operations = anchorsOf(read('docs/operations.md'));

  it.each(ALERT_KINDS)('docs/operations.md has the runbook section of %s alerts', (kind) => {
    expect(operations).toContain(runbookAnchor(kind));
  });

  it.each(ALERT_KINDS)('the runbook link of a %s alert resolves by default', (kind) => {
    const link = runbookLink(runbookAnchor(kind));
    expect(link).toBe(`${DEFAULT_RUNBOOK_DOCUMENT}#runbook-${kind}`);
    expect(resolvesInRepository(link)).toBe(true);
    const alert: Alert = { kind, runner: 'r', secretId: 's', severity: 'warning', summary: 's', hosts: [], since: '2026-01-01T00:00:00.000Z', nextStep: 'n', runbook: runbookAnchor(kind), reminder: false, stateKey: 'k' };
    expect(alertText(alert)).toContain(`Runbook:   ${link}`);
  });

  it('every document section the code names (`docs/….md#anchor`, `README.md#anchor`) exists', () => {
    const named = ['src', 'functions', 'lib', 'bin'].flatMap(sourceFiles).flatMap((file) =>
      [...read(file).matchAll(/(?<![\w/.-])((?:docs\/[\w.-]+|[\w-]*README)\.md#[\w-]+)(?![\w<-])/g)].map((m) => ({ file, link: m[1] ?? '' })),
    );
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter(({ link }) => !resolvesInRepository(link))).toEqual([]);
  });
});
