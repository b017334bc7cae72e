import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlertTopicProps {
  /** From the fleet file's `alerts.emails`: each address is subscribed (and confirms once by e-mail). */
  emails: string[];
}

/**
 * The one SNS topic every alert goes through: the notifier's messages, the rotation functions' own alerts and
 * the CloudWatch alarms. It is encrypted with a customer-managed KMS key (yearly rotation) and refuses
 * requests that do not use TLS (`enforceSSL`: a topic policy denying `aws:SecureTransport` false).
 *
 * Who may use the key: SNS encrypts and decrypts a message with the publisher's own permissions, so each
 * publisher needs kms:GenerateDataKey and kms:Decrypt on the key ("Managing Amazon SNS encryption keys and
 * costs", docs.aws.amazon.com/sns/latest/dg/sns-key-management.html). Our functions get them from
 * grantPublishTo, limited to calls made through SNS (`kms:ViaService`); a refusal there fails their Publish
 * call loudly. CloudWatch alarms publish as the service principal `cloudwatch.amazonaws.com`, which the key
 * policy ("Enable compatibility between event sources from AWS services and encrypted topics", same page) and
 * the topic policy let in for the alarms of this account and region only (`aws:SourceAccount`,
 * `aws:SourceArn`: the confused-deputy guard). Subscribers (e-mail, Lambda, Chatbot) need no key permission.
 */
export class AlertTopic extends Construct {
  readonly key: kms.Key;
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlertTopicProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.key = new kms.Key(this, 'Key', {
      description: 'Encrypts the GitLab runner rotator alert topic',
      enableKeyRotation: true,
    });
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'GitLab runner rotator alerts',
      masterKey: this.key,
      enforceSSL: true,
    });

    const fromThisAccountsAlarms = {
      StringEquals: { 'aws:SourceAccount': stack.account },
      ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'cloudwatch', resource: 'alarm', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
    };
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToAlertTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        // The form the SNS guide documents for service publishers: a publish refused here is dropped silently.
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: fromThisAccountsAlarms,
      }),
    );
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: fromThisAccountsAlarms,
      }),
    );

    for (const email of props.emails) this.topic.addSubscription(new subscriptions.EmailSubscription(email));
  }

  /** sns:Publish on the topic, and the key use SNS makes on the publisher's behalf (through SNS only). */
  grantPublishTo(grantee: iam.IGrantable): void {
    const stack = Stack.of(this);
    iam.Grant.addToPrincipal({ grantee, actions: ['sns:Publish'], resourceArns: [this.topic.topicArn] });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resourceArns: [this.key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `sns.${stack.region}.${stack.urlSuffix}` } },
    });
  }
}
