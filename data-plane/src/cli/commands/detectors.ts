import { DETECTORS, isDetector, isDetectorMode } from '@fluxgate/contracts';
import { changeDetectorMode, listDetectorModes } from '../../operator/detector-modes.js';
import { EXIT, type CliContext } from '../context.js';
import { UsageError } from '../usage.js';
import { operatorDeps } from './operator-deps.js';

/**
 * `detectors list` and `detectors mode <detector> enforce|shadow|clear`: the guard's detector
 * modes at run time (they win over GUARD_DEFAULT_MODE and GUARD_MODES until cleared), applied at
 * the guard's next poll. A change leaves an operator incident (as `cli:<user>`, with --reason).
 */
export async function detectorsCommand(
  ctx: CliContext,
  sub: string | undefined,
  args: string[],
  flags: { json?: boolean; reason?: string },
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
  if (flags.reason !== undefined && flags.reason.length > 500) throw new UsageError('--reason is at most 500 characters');
  const change = await changeDetectorMode(await operatorDeps(ctx), detector, mode === 'clear' ? null : mode, actor, flags.reason ?? null);
  if (flags.json) ctx.out(JSON.stringify(change));
  else if (change.incidentId === null && change.previous === change.mode)
    ctx.out(`${detector}: already ${change.mode ?? 'configured'}; nothing changed`);
  else
    ctx.out(
      `${detector}: ${change.previous ?? 'configured'} → ${change.mode ?? 'configured'} (the guard applies it at its next poll)${change.incidentId ? `; incident ${change.incidentId}` : ''}`,
    );
  return EXIT.ok;
}
