import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/**
 * The one DynamoDB table of rotation state (DESIGN.md): pending rotations, per-host delivery results,
 * rotation history and alert de-duplication, keyed `pk`/`sk`, with `expiresAt` (epoch seconds) for TTL.
 * Retained on stack deletion: it is the audit trail of every rotation.
 */
export class LedgerTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /**
   * What the rotation ledger sends (src/adapters/aws/dynamodb-ledger.ts): GetItem, PutItem, DeleteItem, Query, and
   * TransactWriteItems, which IAM authorizes as the PutItem and DeleteItem inside it. Nothing else: no scans,
   * batches or streams (grantReadWriteData would add eight actions no call makes).
   */
  grantRotationLedger(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Query');
  }

  /**
   * The scan worker: the rotation ledger, and UpdateItem for the GitLab budget it shares with the other
   * workers (dynamodb-rate-budget.ts); its runner claims (dynamodb-scan-claims.ts) are PutItem.
   */
  grantScanWorker(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:UpdateItem');
  }

  /** What the alert ledger sends (src/adapters/aws/dynamodb-alert-ledger.ts): GetItem and PutItem. */
  grantAlertLedger(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:GetItem', 'dynamodb:PutItem');
  }
}
