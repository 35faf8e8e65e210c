import { DETECTORS, isDetector, isDetectorMode } from '@fluxgate/contracts';
import { changeDetectorMode, listDetectorModes } from '../../operator/detector-modes.js';
import { EXIT, type CliContext } from '../context.js';
import { UsageError } from '../usage.js';

/**
 * `detectors list` and `detectors mode <detector> enforce|shadow|clear`: the guard's detector
 * modes at run time (they win over GUARD_DEFAULT_MODE and GUARD_MODES until cleared), applied at
 * the guard's next poll.
 */
export async function detectorsCommand(
  ctx: CliContext,
  sub: string | undefined,
  args: string[],
  flags: { json?: boolean },
  actor: string,
): Promise<number> {
  if (sub === 'list') {
    if (args.length > 0) throw new UsageError(`unexpected argument: ${args[0]}`);
    const modes = await listDetectorModes({ redis: await ctx.redis() });
    if (flags.json) ctx.out(JSON.stringify(modes));
    else for (const m of modes) ctx.out(`${m.detector.padEnd(22)}${m.mode ?? 'configured'}`);
    return EXIT.ok;
  }
  if (sub !== 'mode') throw new UsageError(sub === undefined ? 'missing detectors subcommand' : `unknown detectors subcommand: ${sub}`);
  const [detector, mode, ...rest] = args;
  if (rest.length > 0 || detector === undefined || mode === undefined)
    throw new UsageError('expected: detectors mode <detector> enforce|shadow|clear');
  if (!isDetector(detector)) throw new UsageError(`unknown detector ${detector} (one of ${DETECTORS.join(', ')})`);
  if (mode !== 'clear' && !isDetectorMode(mode)) throw new UsageError('the mode must be enforce, shadow or clear');
  const change = await changeDetectorMode(
    { sql: ctx.sql(), redis: await ctx.redis(), warn: ctx.warn },
    detector,
    mode === 'clear' ? null : mode,
    actor,
  );
  ctx.out(`${detector}: ${change.previous ?? 'configured'} → ${change.mode ?? 'configured'} (the guard applies it at its next poll)`);
  return EXIT.ok;
}
