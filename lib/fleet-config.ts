import { readFileSync } from 'node:fs';
import { parseAwsFleetConfig, type AwsFleetConfig } from '../src/config/aws-fleet-config.ts';
import { InvalidInputError } from '../src/core/errors.ts';

/** The fleet file as the CDK app needs it: the checked config to build from, and its path and text for messages. */
export interface LoadedFleet {
  path: string;
  /** The file's text, unchanged (no bundle holds it: the Lambdas get fleetSettingsText and read runners from tags). */
  text: string;
  config: AwsFleetConfig;
}

/**
 * Reads and checks the fleet file named by the `fleetConfig` context. Any problem throws an
 * InvalidInputError naming the file (and the field), which stops the synth before anything is built.
 */
export function loadFleetConfig(path: string | undefined): LoadedFleet {
  if (typeof path !== 'string' || path === '') {
    throw new InvalidInputError('cdk context fleetConfig', 'is not set: name your fleet file, `npx cdk deploy -c fleetConfig=fleet.aws.json` (fleet.aws.example.json shows the fields; there is no default, so a deploy never takes the example\'s placeholder ids)');
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidInputError(path, `cannot read the fleet file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  return { path, text, config: parseAwsFleetConfig(text, path) };
}
