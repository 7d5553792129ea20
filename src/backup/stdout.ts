import { fchmodSync, fstatSync } from 'node:fs';
import { PluginError } from '../errors.js';

/**
 * With `-f - > snapshot.db` the shell creates the file with the user's umask (often 0644), yet it
 * will hold every Secret of the cluster: when `fd` is a regular file, make it 0600 before any byte
 * is written. Pipes and terminals are left alone. Returns true when the mode was changed.
 */
export function restrictStdoutFile(fd = 1): boolean {
  const st = fstatSync(fd);
  if (!st.isFile() || (st.mode & 0o077) === 0) return false;
  try {
    fchmodSync(fd, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new PluginError(
      `stdout is a file others can read (mode ${(st.mode & 0o777).toString(8)}) and it cannot be made private: ${code}`,
      'write with -f FILE instead, or create the file yourself: (umask 077; kubectl etcd backup … -f - > snapshot.db)',
    );
  }
  return true;
}
