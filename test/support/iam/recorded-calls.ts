import type { PrincipalName } from './deployment.ts';

/** One call to an AWS API as the code made it: who made it, the SDK command's name and its input. */
export interface RecordedCall {
  principal: PrincipalName;
  /** The SDK command's class name, e.g. `SendCommandCommand`, or lib-dynamodb's `PutCommand`. */
  command: string;
  /** `dynamodb` for lib-dynamodb commands, whose names do not say it. */
  service: 'secretsmanager' | 'ssm' | 'sns' | 'dynamodb' | 'sqs';
  input: Record<string, unknown>;
}

interface Sender {
  send(command: unknown, ...rest: unknown[]): Promise<unknown>;
}

/**
 * Every AWS call made through the clients it hands out, with the principal that made it. Each function,
 * the operator's CLI and each host gets clients of its own (`as`), all answered by the same fakes, so a
 * call is charged to the role that would make it in AWS.
 */
export class CallRecorder {
  readonly calls: RecordedCall[] = [];

  /**
   * A client that records each call, then sends it through `client` (an aws-sdk-client-mock'ed instance).
   * It inherits from `client`, so `instanceof` checks (the SDK paginators make one) still hold.
   */
  as<C extends Sender>(principal: PrincipalName, service: RecordedCall['service'], client: C): C {
    const recording = Object.create(client) as C;
    const send = (command: unknown, ...rest: unknown[]) => {
      const named = command as { constructor: { name: string }; input: Record<string, unknown> };
      this.calls.push({ principal, service, command: named.constructor.name, input: structuredClone(named.input) });
      return client.send(command, ...rest);
    };
    Object.defineProperty(recording, 'send', { value: send });
    return recording;
  }

  record(call: RecordedCall): void {
    this.calls.push(call);
  }
}
