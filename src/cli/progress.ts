import type { RotationEvent } from '../core/ports.ts';
import { outageWindow } from '../core/outage-window.ts';
import type { Output } from './output.ts';

/** One line per rotation event: what the operator watches while a rotation runs. Never a token. */
export function progressPrinter(output: Output): (event: RotationEvent) => void {
  return (event) => {
    const tag = `[${event.secretId}]`;
    switch (event.kind) {
      case 'step-started':
        output.out(`${tag} ${event.step} (version ${shortId(event.versionId)})`);
        break;
      case 'step-skipped':
        output.out(`${tag} ${event.step} skipped: ${event.reason}`);
        break;
      case 'token-reset':
        output.out(`${tag}   GitLab reset runner ${event.runnerId}'s token (${RESET_VIA[event.via]}${event.host ? ` of host ${event.host}` : ''})`);
        break;
      case 'token-stored':
        output.out(`${tag}   new token stored as AWSPENDING (${event.attempts} attempt${event.attempts === 1 ? '' : 's'})`);
        break;
      case 'host-result': {
        const r = event.result;
        output.out(`${tag}   host ${r.host}: ${r.status}${r.systemId ? ` (system_id ${r.systemId})` : ''} - ${r.detail}`);
        break;
      }
      case 'token-verified':
        output.out(`${tag}   ${event.verified ? 'GitLab accepts the new token' : 'not verified'}: ${event.reason}`);
        break;
      case 'promoted': {
        const window = outageWindow(event.record);
        output.out(`${tag}   AWSCURRENT is now version ${shortId(event.versionId)}; outage window ${formatWindow(window.ms, window.complete)}`);
        break;
      }
      case 'runner-created':
        output.out(`${tag}   GitLab created runner ${event.runnerId} with runner ${event.replaces}'s settings${event.projects.length > 1 ? ` (enabled on projects ${event.projects.join(', ')})` : ''}; runner ${event.replaces} stays valid`);
        break;
      case 'host-confirmed':
        output.out(`${tag}   host ${event.host}: gitlab-runner contacted GitLab as runner ${event.runnerId} (system_id ${event.systemId})`);
        break;
      case 'host-removed': {
        const r = event.result;
        output.out(`${tag}   host ${r.host}: runner ${event.runnerId}'s table ${r.status === 'already-current' ? 'was gone already' : r.status === 'updated' ? 'removed' : `NOT removed (${r.status})`} - ${r.detail}`);
        break;
      }
      case 'runner-deleted':
        output.out(`${tag}   GitLab runner ${event.runnerId} ${event.alreadyGone ? 'was deleted already' : 'deleted'}`);
        break;
      case 'warning':
        output.err(`${tag} warning: ${event.message}`);
        break;
    }
  };
}

const RESET_VIA = {
  'current-token': 'with the current token',
  'admin-token': 'by id with the admin token',
  'host-token': 'with the token a host rotated by itself, found in its config.toml',
} as const;

export function shortId(versionId: string): string {
  return versionId.length > 8 ? `${versionId.slice(0, 8)}…` : versionId;
}

export function formatWindow(ms: number | null, complete: boolean): string {
  if (ms === null) return 'open (no host took the new token)';
  return `${ms} ms${complete ? '' : ' (some hosts still missing the token)'}`;
}
