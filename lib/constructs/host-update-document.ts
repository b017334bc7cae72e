import { Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { buildHostUpdateDocument } from '../../src/adapters/aws/host-update-document.ts';

/**
 * The SSM Command document that runs the host updater on each runner host. Its parameters identify the
 * secret version to fetch (the host reads the token itself with its instance role); none carries a token.
 * `NewVersion` keeps the document's name across content changes, so the Lambdas' HOST_DOCUMENT_NAME holds.
 */
export class HostUpdateDocument extends Construct {
  readonly document: ssm.CfnDocument;
  /** The name SendCommand takes (CloudFormation generates it). */
  readonly documentName: string;
  /** `arn:…:ssm:<region>:<account>:document/<name>`: the resource SendCommand is granted on. */
  readonly documentArn: string;

  /** `content`: the document (default: the host update document; the convergence document passes its own). */
  constructor(scope: Construct, id: string, props: { content?: Record<string, unknown> } = {}) {
    super(scope, id);
    this.document = new ssm.CfnDocument(this, 'Document', {
      documentType: 'Command',
      documentFormat: 'JSON',
      updateMethod: 'NewVersion',
      content: props.content ?? buildHostUpdateDocument(),
    });
    this.documentName = this.document.ref;
    this.documentArn = Stack.of(this).formatArn({ service: 'ssm', resource: 'document', resourceName: this.documentName });
  }
}
