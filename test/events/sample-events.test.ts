import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseRotationEvent } from '../../src/core/rotation-event.ts';
import { ROTATION_STEPS } from '../../src/core/types.ts';

const read = async (name: string) => JSON.parse(await readFile(new URL(`../../events/${name}`, import.meta.url), 'utf8')) as Record<string, unknown>;

describe('the sample events in events/', () => {
  it('has one rotation event per step, each accepted by the hook as that step', async () => {
    const files = (await readdir(new URL('../../events/', import.meta.url))).filter((f) => f.startsWith('rotation-') && f.endsWith('-secret.json'));
    const steps = await Promise.all(files.map(async (f) => parseRotationEvent(await read(f)).step));
    expect(steps.sort()).toEqual([...ROTATION_STEPS].sort());
  });

  it('has the schedule event the scanner is invoked with', async () => {
    expect(await read('scan-schedule.json')).toMatchObject({ source: 'aws.events', 'detail-type': 'Scheduled Event' });
  });

  it.each(['RotationFailed', 'RotationAbandoned', 'RotationSucceeded'])('has a CloudTrail service event for %s naming a managed secret', async (eventName) => {
    const file = `rotation-${eventName.replace('Rotation', '').toLowerCase()}.json`;
    const event = await read(file);
    expect(event).toMatchObject({ source: 'aws.secretsmanager', detail: { eventName, eventSource: 'secretsmanager.amazonaws.com' } });
    expect(JSON.stringify(event)).toContain(':secret:gitlab-runner-rotator/');
  });
});
