import { Stack } from 'aws-cdk-lib';
import * as chatbot from 'aws-cdk-lib/aws-chatbot';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

export interface ChatbotSlackChannelProps {
  /** From the fleet file's `alerts.chatbot`; the workspace must have been authorized once in the AWS Chatbot console. */
  slackWorkspaceId: string;
  slackChannelId: string;
  alertTopic: sns.ITopic;
  /** The alarms the channel may describe (to render their notifications); nothing else is readable. */
  alarms: cloudwatch.IAlarm[];
}

/**
 * AWS Chatbot relaying the alert topic to one Slack channel, for notifications only. Its role, and the guardrail
 * that caps what anyone in the channel can do through it, allow one read-only action: cloudwatch:DescribeAlarms
 * on this stack's alarms. Without an explicit guardrail Chatbot would apply AdministratorAccess. Chatbot logs
 * only its errors.
 */
export class ChatbotSlackChannel extends Construct {
  readonly configuration: chatbot.SlackChannelConfiguration;
  readonly role: iam.Role;
  readonly guardrail: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: ChatbotSlackChannelProps) {
    super(scope, id);
    const readAlarms = new iam.PolicyStatement({
      sid: 'DescribeRotatorAlarms',
      actions: ['cloudwatch:DescribeAlarms'],
      resources: props.alarms.map((alarm) => alarm.alarmArn),
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('chatbot.amazonaws.com'),
      description: 'AWS Chatbot channel role of the GitLab runner rotator alerts: read-only, notifications only',
      inlinePolicies: { ReadRotatorAlarms: new iam.PolicyDocument({ statements: [readAlarms] }) },
    });
    this.guardrail = new iam.ManagedPolicy(this, 'Guardrail', {
      description: 'Guardrail of the GitLab runner rotator Slack channel: nothing but reading the rotator alarms',
      statements: [readAlarms],
    });
    this.configuration = new chatbot.SlackChannelConfiguration(this, 'Configuration', {
      slackChannelConfigurationName: `${Stack.of(this).stackName}-alerts`.slice(0, 128),
      slackWorkspaceId: props.slackWorkspaceId,
      slackChannelId: props.slackChannelId,
      notificationTopics: [props.alertTopic],
      role: this.role,
      guardrailPolicies: [this.guardrail],
      loggingLevel: chatbot.LoggingLevel.ERROR,
      userRoleRequired: false,
    });
  }
}
