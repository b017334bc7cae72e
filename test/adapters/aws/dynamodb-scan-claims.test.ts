import { afterEach, describe, expect, it } from 'vitest';
import { DynamoDbScanClaims } from '../../../src/adapters/aws/dynamodb-scan-claims.ts';
import { FakeDynamoTable } from '../../support/fake-dynamodb.ts';

const SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-runner-rotator/builders-AbCdEf';
const t0 = new Date('2026-12-05T12:00:00Z');
const later = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);
/** Half of a 6-hour scan interval before `at`. */
const notBefore = (at: Date) => new Date(at.getTime() - 3 * 3_600_000);

let table: FakeDynamoTable;
afterEach(() => table?.mock.restore());

function claims() {
  table = new FakeDynamoTable();
  return new DynamoDbScanClaims(table.client, 'ledger');
}

describe('the scan claim of a runner', () => {
  it('goes to the first scan, and is refused to another scan within half a scan interval', async () => {
    const c = claims();
    expect(await c.claim(SECRET, 'scan-a', t0, notBefore(t0), later(10))).toBe(true);
    expect(await c.claim(SECRET, 'scan-b', later(60), notBefore(later(60)), later(70))).toBe(false);
    expect(await c.claim(SECRET, 'scan-b', later(181), notBefore(later(181)), later(191))).toBe(true);
  });

  it('is refused to a second copy of the same scan while the first holds its lease (a duplicate delivery)', async () => {
    const c = claims();
    expect(await c.claim(SECRET, 'scan-a', t0, notBefore(t0), later(10))).toBe(true);
    expect(await c.claim(SECRET, 'scan-a', later(1), notBefore(later(1)), later(11))).toBe(false);
  });

  it('goes back to the same scan once handed on, or once the lease of a worker that died has run out', async () => {
    const c = claims();
    expect(await c.claim(SECRET, 'scan-a', t0, notBefore(t0), later(10))).toBe(true);
    await c.defer(SECRET, 'scan-a');
    expect(await c.claim(SECRET, 'scan-a', later(2), notBefore(later(2)), later(12))).toBe(true);
    // That second worker dies with the claim held: after its lease, the scan may take the runner again.
    expect(await c.claim(SECRET, 'scan-a', later(11), notBefore(later(11)), later(21))).toBe(false);
    expect(await c.claim(SECRET, 'scan-a', later(13), notBefore(later(13)), later(23))).toBe(true);
  });

  it('leaves a claim another scan took meanwhile alone when handing on', async () => {
    const c = claims();
    expect(await c.claim(SECRET, 'scan-b', t0, notBefore(t0), later(10))).toBe(true);
    await c.defer(SECRET, 'scan-a');
    expect(table.items.get(`SECRET#${SECRET}|SCAN`)).toMatchObject({ scanId: 'scan-b', state: 'scanning' });
  });

  it('passes on a DynamoDB failure other than a refused condition', async () => {
    const c = claims();
    table.mock.rejects(Object.assign(new Error('Rate of requests exceeds the allowed throughput'), { name: 'ProvisionedThroughputExceededException' }));
    await expect(c.claim(SECRET, 'scan-a', t0, notBefore(t0), later(10))).rejects.toThrow(/allowed throughput/);
  });
});
