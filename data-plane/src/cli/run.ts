import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { cliActor } from '../operator/audit.js';
import { allowlistCommand } from './commands/allowlist.js';
import { detectorsCommand } from './commands/detectors.js';
import { penaltyCommand } from './commands/penalty.js';
import { tiersCommand } from './commands/tiers.js';
import { isConnectionError } from '../store/db.js';
import { StoreError } from '../store/keys.js';
import { dbCommand } from './commands/db.js';
import { keysCommand } from './commands/keys.js';
import { usersCommand } from './commands/users.js';
import { describeEndpoint, loadCliConfig, readRuntimeFile } from './config.js';
import { EXIT, createCliContext, type CliIo } from './context.js';
import { USAGE, UsageError } from './usage.js';

/**
 * The whole CLI as a function of argv and the environment, returning the exit code; main.ts
 * only wires it to the process. Every failure is one line on stderr.
 */
export async function runCli(argv: string[], env: Readonly<Record<string, string | undefined>>, io: CliIo): Promise<number> {
  const fail = (line: string, code: number): number => {
    io.stderr.write(`fluxgate: ${line}\n`);
    return code;
  };

  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        email: { type: 'string' },
        name: { type: 'string' },
        tier: { type: 'string' },
        role: { type: 'string' },
        json: { type: 'boolean' },
        'init-sql': { type: 'string' },
        'database-url': { type: 'string' },
        'redis-url': { type: 'string' },
        level: { type: 'string' },
        duration: { type: 'string' },
        reason: { type: 'string' },
        force: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        'expires-in': { type: 'string' },
        'requests-per-window': { type: 'string' },
        'tokens-per-window': { type: 'string' },
        'window-seconds': { type: 'string' },
        'concurrent-streams': { type: 'string' },
        burst: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return fail(`${(err as Error).message.split(/\.\s/)[0]} (see --help)`, EXIT.usage);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  const [command, sub, ...rest] = positionals;
  if (command === undefined) {
    io.stderr.write(`${USAGE}\n`);
    return EXIT.usage;
  }

  const runtime = readRuntimeFile(env.FLUXGATE_STATE_DIR || '.fluxgate', (line) => io.stderr.write(`fluxgate: ${line}\n`));
  const cfg = loadCliConfig(env, { databaseUrl: values['database-url'], redisUrl: values['redis-url'] }, runtime);
  if (!cfg.ok) return fail(cfg.error, EXIT.usage);
  const ctx = createCliContext(cfg.config, io);
  // Operator actions name who acted (audit log, operator incidents, penalty records).
  const actor = cliActor(env.USER || env.LOGNAME || osUser());
  try {
    switch (command) {
      case 'keys':
        return await keysCommand(ctx, sub, rest, { email: values.email, name: values.name, tier: values.tier, json: values.json });
      case 'users':
        return await usersCommand(ctx, sub, rest, { email: values.email, role: values.role });
      case 'db':
        return await dbCommand(ctx, sub, rest, { initSql: values['init-sql'] });
      case 'penalty':
        return await penaltyCommand(
          ctx,
          sub,
          rest,
          {
            level: values.level,
            duration: values.duration,
            reason: values.reason,
            force: values.force,
            dryRun: values['dry-run'],
            json: values.json,
          },
          actor,
        );
      case 'allowlist':
        return await allowlistCommand(ctx, sub, rest, { reason: values.reason, expiresIn: values['expires-in'], json: values.json }, actor);
      case 'detectors':
        return await detectorsCommand(ctx, sub, rest, { json: values.json, reason: values.reason }, actor);
      case 'tiers':
        return await tiersCommand(
          ctx,
          sub,
          rest,
          {
            requestsPerWindow: values['requests-per-window'],
            tokensPerWindow: values['tokens-per-window'],
            windowSeconds: values['window-seconds'],
            concurrentStreams: values['concurrent-streams'],
            burst: values.burst,
            json: values.json,
          },
          actor,
        );
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError) return fail(`${err.message} (see --help)`, EXIT.usage);
    if (err instanceof StoreError) return fail(err.message, EXIT.refused);
    if (isConnectionError(err)) {
      return fail(
        `cannot reach Postgres at ${describeEndpoint(cfg.config.DATABASE_URL)} (${(err as { code: string }).code})`,
        EXIT.failure,
      );
    }
    const code = (err as { code?: unknown }).code;
    if (code === '42P01') return fail('the schema is missing: run `fluxgate db migrate` first', EXIT.failure);
    return fail((err as Error).message?.split('\n')[0] || String(err), EXIT.failure);
  } finally {
    await ctx.close();
  }
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
