import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadFleetConfig } from '../lib/fleet-config.ts';
import { RotatorStack } from '../lib/rotator-stack.ts';

const app = new App();
// Names the file and the field, and stops the synth, when the fleet file is missing or wrong.
const fleet = loadFleetConfig(app.node.tryGetContext('fleetConfig') as string | undefined);
new RotatorStack(app, 'GitLabRunnerRotator', { fleet, description: 'Rotates GitLab Runner authentication tokens and updates every host (gitlab-runner-token-rotator)' });
// cdk-nag 3 is a policy validation plugin: an unacknowledged finding fails the synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
