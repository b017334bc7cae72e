import type { Alert } from '../../core/alerts.ts';
import { alertText, type AlertTextOptions } from '../../core/alert-text.ts';
import type { AlertSink } from '../../core/ports.ts';

/**
 * The local engine's alerts on the terminal: the plain-text rendering (alertText), one line at a time,
 * through the writer the CLI passes (its stdout), then an empty line to set the next alert apart.
 */
export class ConsoleAlertSink implements AlertSink {
  constructor(
    private readonly write: (line: string) => void,
    private readonly options: AlertTextOptions = {},
  ) {}

  async publish(alert: Alert): Promise<void> {
    for (const line of alertText(alert, this.options).split('\n')) this.write(line);
    this.write('');
  }
}
