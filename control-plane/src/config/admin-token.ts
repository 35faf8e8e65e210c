import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The bearer token for /metrics: ADMIN_TOKEN, else the one the data plane generated under the
 * shared state dir (it may appear after the control plane started, so it is looked up until
 * found). Never generated here: one token per installation, owned by the data plane.
 */
export function adminTokenSource(configured: string | undefined, stateDir: string): () => string | null {
  if (configured) return () => configured;
  let found: string | null = null;
  return () => {
    if (found) return found;
    try {
      const t = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
      if (t.length >= 16) found = t;
    } catch {
      // not there (yet)
    }
    return found;
  };
}
