import type { Deployment } from './deployment.ts';
import type { IamRequest } from './iam-requests.ts';

/**
 * What the Lambda service does with each function's role whatever the code does: write the function's
 * log stream (logs:CreateLogStream, logs:PutLogEvents on `<log group>:log-stream:<stream>`) and, with
 * active tracing, send trace segments (xray:PutTraceSegments, xray:PutTelemetryRecords, no resource).
 * Lambda Developer Guide: "Lambda execution role" and "Using AWS Lambda with AWS X-Ray". And for the scan
 * worker, its SQS event source polls with the function's role: "sqs:ReceiveMessage, sqs:DeleteMessage,
 * sqs:GetQueueAttributes" on the queue (Lambda Developer Guide, "Using Lambda with Amazon SQS", execution
 * role permissions).
 */
export function platformRequests(deployment: Deployment): IamRequest[] {
  return (['RotateSecret', 'ScanExpiry', 'ScanRunners', 'Notify'] as const).flatMap((fn) => {
    const stream = `${deployment.logGroupArns[fn].replace(/:\*$/, '')}:log-stream:2026/12/04/[$LATEST]0123456789abcdef0123456789abcdef`;
    const because = `Lambda runs ${fn}`;
    return [
      { principal: fn, action: 'logs:CreateLogStream', resource: stream, context: {}, because },
      { principal: fn, action: 'logs:PutLogEvents', resource: stream, context: {}, because },
      { principal: fn, action: 'xray:PutTraceSegments', resource: '*', context: {}, because },
      { principal: fn, action: 'xray:PutTelemetryRecords', resource: '*', context: {}, because },
      ...(fn === 'ScanRunners'
        ? ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'].map((action) => ({
            principal: fn,
            action,
            resource: deployment.scanQueue.arn,
            context: { 'aws:SecureTransport': 'true' },
            because: 'the SQS event source polls the scan queue',
          }))
        : []),
    ];
  });
}

/**
 * What AWS services do on the stack's behalf, read from the template's wiring, each judged against the
 * resource policy of its target:
 * - EventBridge invokes each rule's Lambda targets and sends to its dead-letter queue (`aws:SourceArn` = the rule);
 * - SNS invokes each Lambda subscriber of the alert topic (`aws:SourceArn` = the topic);
 * - CloudWatch publishes each alarm's actions to the topic and uses the topic's key for it
 *   (`aws:SourceArn` = the alarm, `aws:SourceAccount`).
 * Secrets Manager invoking the rotation hook comes with each recorded RotateSecret (iam-requests.ts).
 */
export function serviceRequests(deployment: Deployment): IamRequest[] {
  const { template, resolver } = deployment;
  const { account } = deployment.site;
  const requests: IamRequest[] = [];
  const from = (service: string, action: string, resource: string, sourceArn: string, because: string): IamRequest => ({
    principal: `${service}.amazonaws.com`,
    action,
    resource,
    context: { 'aws:SourceArn': sourceArn, 'aws:SourceAccount': account },
    because,
  });
  for (const [id, resource] of Object.entries(template.Resources)) {
    const props = resource.Properties ?? {};
    if (resource.Type === 'AWS::Events::Rule') {
      const rule = resolver.getAtt(id, 'Arn');
      for (const target of resolver.resolve(props.Targets ?? []) as Array<{ Arn: string; DeadLetterConfig?: { Arn: string } }>) {
        if (target.Arn.includes(':lambda:')) requests.push(from('events', 'lambda:InvokeFunction', target.Arn, rule, `rule ${id} invokes its target`));
        if (target.DeadLetterConfig) requests.push(from('events', 'sqs:SendMessage', target.DeadLetterConfig.Arn, rule, `rule ${id} dead-letters an event`));
      }
    }
    if (resource.Type === 'AWS::SNS::Subscription' && props.Protocol === 'lambda') {
      const topic = resolver.resolve(props.TopicArn) as string;
      requests.push(from('sns', 'lambda:InvokeFunction', resolver.resolve(props.Endpoint) as string, topic, `subscription ${id} delivers`));
    }
    if (resource.Type === 'AWS::CloudWatch::Alarm') {
      const alarm = resolver.getAtt(id, 'Arn');
      for (const topic of resolver.resolve(props.AlarmActions ?? []) as string[]) {
        const because = `alarm ${id} notifies`;
        requests.push(from('cloudwatch', 'sns:Publish', topic, alarm, because));
        if (topic === deployment.alertTopicArn) {
          requests.push(from('cloudwatch', 'kms:GenerateDataKey', deployment.alertKeyArn, alarm, because), from('cloudwatch', 'kms:Decrypt', deployment.alertKeyArn, alarm, because));
        }
      }
    }
  }
  return requests;
}
