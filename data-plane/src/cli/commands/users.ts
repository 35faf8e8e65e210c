import { isUserRole, setUserRole, USER_ROLES } from '../../store/users.js';
import { EXIT, type CliContext } from '../context.js';
import { UsageError } from '../usage.js';

/** `users promote --email <email> --role user|operator|admin`: operators see incidents and the penalty box. */
export async function usersCommand(
  ctx: CliContext,
  sub: string | undefined,
  args: string[],
  flags: { email?: string; role?: string },
): Promise<number> {
  if (sub !== 'promote') throw new UsageError(sub === undefined ? 'missing users subcommand' : `unknown users subcommand: ${sub}`);
  if (args.length > 0) throw new UsageError(`unexpected argument: ${args[0]}`);
  if (!flags.email) throw new UsageError('users promote needs --email');
  if (!flags.role || !isUserRole(flags.role)) throw new UsageError(`--role must be one of ${USER_ROLES.join(', ')}`);
  const result = await setUserRole(ctx.sql(), flags.email, flags.role, { actor: 'cli' });
  if (!result) {
    ctx.warn('no account with that email');
    return EXIT.refused;
  }
  ctx.out(result.changed ? `${result.user.email}: ${result.previousRole} → ${flags.role}` : `${result.user.email}: already ${flags.role}`);
  return EXIT.ok;
}
