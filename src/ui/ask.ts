/** One question on the terminal (stderr), for confirmations. */
import { createInterface } from 'node:readline';

/** Asks a question on the terminal; undefined when stdin or stderr is not a terminal. */
export function ask(question: string): Promise<string | undefined> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return Promise.resolve(undefined);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer);
    });
  });
}
