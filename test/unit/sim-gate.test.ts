import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { STANDIN_STATUS, standInState } from '../sim/apiserver/gate.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

/** A cluster dir with kube-apiserver stand-ins: pid (alive or not) and the last write through etcd. */
function cluster(standIns: Array<{ pid: number | null; lastOk?: number }>): string {
  const dir = mkdtempSync(join(tmpdir(), 'gate-'));
  dirs.push(dir);
  standIns.forEach((s, i) => {
    const pod = join(dir, 'runtime/pods/kube-system', `kube-apiserver-node-${i + 1}`);
    const rootfs = join(dir, `rootfs-${i}`);
    mkdirSync(pod, { recursive: true });
    mkdirSync(rootfs, { recursive: true });
    writeFileSync(join(pod, 'kube-apiserver.json'), JSON.stringify({ pid: s.pid, rootfs }));
    if (s.lastOk !== undefined) writeFileSync(join(rootfs, STANDIN_STATUS), JSON.stringify({ lastOk: s.lastOk }));
  });
  return dir;
}

const DEAD = 2 ** 22 + 12345; // above pid_max's default: no such process

describe('the API gate reads the kube-apiserver stand-ins', () => {
  it('serving while one runs and wrote within 8 s; no quorum while they run without a recent write; down when none runs', async () => {
    const now = Date.now();
    expect(await standInState(cluster([{ pid: process.pid, lastOk: now - 500 }]), now)).toBe('serving');
    expect(await standInState(cluster([{ pid: DEAD, lastOk: now }, { pid: process.pid, lastOk: now - 10_000 }]), now)).toBe('no-quorum');
    expect(await standInState(cluster([{ pid: process.pid }]), now)).toBe('no-quorum');
    expect(await standInState(cluster([{ pid: DEAD, lastOk: now }, { pid: null }]), now)).toBe('down');
    expect(await standInState(cluster([]), now)).toBe('down');
  });
});
