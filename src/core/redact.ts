/**
 * The one redactor: every text that may travel (errors, host output, logs, alerts) and might hold a token
 * goes through it. Known secret values are replaced wherever they appear (that also covers legacy runner
 * tokens, which have no prefix), then anything shaped like a GitLab token: the prefixed tokens
 * (`glrt-`, `glpat-` …, also after an instance prefix and with a routable `t1_…` or `.xx` tail) and
 * registration tokens (`GR1348941…`).
 */
const TOKEN_SHAPE = /\b(?:glrt|glrtr|glpat|glptt|gldt|glft|glimt|glagent|gloas|glcbt|glsoat|glffct)-[A-Za-z0-9_.-]+|\bGR1348941[A-Za-z0-9_-]+/g;

export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out.replace(TOKEN_SHAPE, '[redacted]');
}
