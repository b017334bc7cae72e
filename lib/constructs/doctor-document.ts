import { Stack } from 'aws-cdk-lib';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { buildDoctorDocument, doctorDocumentName } from '../../src/adapters/aws/doctor-document.ts';

/**
 * The read-only SSM Command document of `rotator doctor --aws` (src/adapters/aws/doctor-document.ts): it
 * runs host/doctor.sh on each runner host and prints the findings; it never writes config.toml and
 * carries no token. Operators send it with their own credentials: no role of this stack is granted
 * anything on it. Its name is fixed, `<stack name>-RunnerDoctor` (doctorDocumentName), so the CLI finds
 * it without reading the stack outputs; `NewVersion` keeps that name across content changes.
 */
export class DoctorDocument extends Construct {
  readonly document: ssm.CfnDocument;
  readonly documentName: string;
  /** `arn:…:ssm:<region>:<account>:document/<name>`: what an operator's policy grants ssm:SendCommand on. */
  readonly documentArn: string;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const stack = Stack.of(this);
    this.documentName = doctorDocumentName(stack.stackName);
    this.document = new ssm.CfnDocument(this, 'Document', {
      name: this.documentName,
      documentType: 'Command',
      documentFormat: 'JSON',
      updateMethod: 'NewVersion',
      content: buildDoctorDocument(),
    });
    this.documentArn = stack.formatArn({ service: 'ssm', resource: 'document', resourceName: this.documentName });
  }
}
