/** The typed confirmation every changing restore needs, unless --yes. */
import { UsageError } from '../errors.js';

/** Asks for the workload name on a terminal; --yes skips it; no terminal and no --yes is a usage error. */
export async function confirmWorkload(
  opts: { yes: boolean },
  ask: (question: string) => Promise<string | undefined>,
  workload: string,
  question = `this replaces the data of every member of "${workload}"`,
): Promise<void> {
  if (opts.yes) return;
  const answer = await ask(`${question}; type the workload name to go on: `);
  if (answer === undefined) {
    throw new UsageError('restore changes the cluster and needs confirmation, but there is no terminal to ask on', 'pass --yes, or --dry-run to only see the plan');
  }
  if (answer.trim() !== workload) throw new UsageError(`"${answer.trim()}" is not "${workload}"; nothing was changed`, 'run again and type the workload name, or pass --yes');
}
