import type { SecretStore } from '../../src/core/ports.ts';

/**
 * The real secret store underneath, with PutSecretValue (putPendingValue) failing the first `failures`
 * times: the store outage the core must retry through without minting a second token.
 */
export function failingPuts(failures: number, message = 'the secret store is unavailable (injected)'): (store: SecretStore) => SecretStore {
  return (store) => {
    let left = failures;
    return {
      describe: (id) => store.describe(id),
      getValue: (id, ref) => store.getValue(id, ref),
      promote: (id, to, from) => store.promote(id, to, from),
      putPendingValue: async (id, version, value) => {
        if (left > 0) {
          left -= 1;
          throw new Error(message);
        }
        return store.putPendingValue(id, version, value);
      },
    };
  };
}
