import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadFleetConfig } from '../lib/fleet-config.ts';
import { RotatorStack } from '../lib/rotator-stack.ts';
import { synthOrExit } from '../lib/synth-or-exit.ts';

synthOrExit(() => {
  const app = new App();
  // No default: `-c fleetConfig=PATH` (or cdk.json) names the fleet file; a missing or wrong one is one line and exit 2.
  const fleet = loadFleetConfig(app.node.tryGetContext('fleetConfig') as string | undefined);
  new RotatorStack(app, fleet.config.stackName, { fleet, description: 'Rotates GitLab Runner authentication tokens and updates every host (gitlab-runner-token-rotator)' });
  // cdk-nag 3 is a policy validation plugin: an unacknowledged finding fails the synth.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  app.synth();
});
