import { parseArgs } from 'node:util';
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
  try {
    switch (command) {
      case 'keys':
        return await keysCommand(ctx, sub, rest, { email: values.email, name: values.name, tier: values.tier, json: values.json });
      case 'users':
        return await usersCommand(ctx, sub, rest, { email: values.email, role: values.role });
      case 'db':
        return await dbCommand(ctx, sub, rest, { initSql: values['init-sql'] });
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (err) {
    if (err instanceof UsageError) return fail(`${err.message} (see --help)`, EXIT.usage);
    if (err instanceof StoreError) return fail(err.message, EXIT.refused);
    if (isConnectionError(err)) {
      return fail(`cannot reach Postgres at ${describeEndpoint(cfg.config.DATABASE_URL)} (${(err as { code: string }).code})`, EXIT.failure);
    }
    const code = (err as { code?: unknown }).code;
    if (code === '42P01') return fail('the schema is missing: run `fluxgate db migrate` first', EXIT.failure);
    return fail((err as Error).message?.split('\n')[0] || String(err), EXIT.failure);
  } finally {
    await ctx.close();
  }
}
