/**
 * The data plane process: env → config → startDataPlane (boot.ts) → the `listening` line, and
 * SIGTERM/SIGINT → the drain → exit. Nothing else reads process.env; every client is created in
 * boot.ts and passed down.
 */
import { startDataPlane } from './boot.js';
import { SecretFileError } from './bootstrap/secret-file.js';
import { ConfigError, loadConfig } from './config/load.js';
import type { DataPlaneConfig } from './config/schema.js';
import { createLogger } from './log/logger.js';
import { installProcessGuards } from './log/process-guard.js';

let config: DataPlaneConfig;
try {
  config = loadConfig(process.env);
} catch (e) {
  process.stderr.write(`fluxgate data plane: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(2);
}
const log = createLogger({ level: config.LOG_LEVEL, name: 'data-plane' });
installProcessGuards(log);
startDataPlane(config, log).then(
  (dp) => {
    // One machine-readable line for launchers and tests.
    process.stdout.write(
      `${JSON.stringify({ event: 'listening', publicPort: dp.publicPort, adminPort: dp.adminPort, adminTls: dp.adminTls, replicaId: dp.replicaId })}\n`,
    );
    const shutdown = (signal: string) => void dp.stop(signal).then(() => process.exit(0));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof SecretFileError) process.stderr.write(`fluxgate data plane: ${err.message}\n`);
    else log.fatal({ err }, 'data plane failed to start');
    process.exit(1);
  },
);
