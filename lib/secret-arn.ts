import { ArnFormat, type Stack } from 'aws-cdk-lib';

/**
 * The resource to grant on for a secret the stack does not create, named in the fleet file: an ARN is used as
 * given; a name becomes `…:secret:<name>-??????`, the pattern Secrets Manager documents for a secret known by
 * name ("??????" = the six random characters it appends; `*` would also match longer names):
 * docs.aws.amazon.com/secretsmanager/latest/userguide/permissions_grant-limited-resources.html
 */
export function secretArnForGrant(stack: Stack, nameOrArn: string): string {
  if (nameOrArn.startsWith('arn:')) return nameOrArn;
  return stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: `${nameOrArn}-??????`, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
}

/**
 * `arn:<partition>:secretsmanager:<region>:<account>:secret:<secretPrefix>`: the start of the ARN of every secret
 * the fleet manages (each is named `<secretPrefix><runner name>`). With an empty secretPrefix it covers every
 * secret of the account and region.
 */
export function managedSecretArnPrefix(stack: Stack, secretPrefix: string): string {
  return `${stack.formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: '', arnFormat: ArnFormat.COLON_RESOURCE_NAME })}${secretPrefix}`;
}
