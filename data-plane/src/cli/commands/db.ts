import { fileURLToPath } from 'node:url';
import { applySchema } from '../../store/migrate.js';
import { EXIT, type CliContext } from '../context.js';
import { UsageError } from '../usage.js';

/** init.sql at the repository root: three levels up from both src/cli/commands and dist/cli/commands. */
export const DEFAULT_INIT_SQL = fileURLToPath(new URL('../../../../init.sql', import.meta.url));

export async function dbCommand(ctx: CliContext, sub: string | undefined, args: string[], flags: { initSql?: string }): Promise<number> {
  if (sub !== 'migrate') throw new UsageError(sub === undefined ? 'missing db subcommand' : `unknown db subcommand: ${sub}`);
  if (args.length > 0) throw new UsageError(`unexpected argument: ${args[0]}`);
  const path = flags.initSql ?? DEFAULT_INIT_SQL;
  await applySchema(ctx.sql(), path);
  ctx.out(`schema applied from ${path}`);
  return EXIT.ok;
}
