// Local PersistentVolume storage: each PV path (DIR/nodes/NODE/volumes/PV) is an ext4 filesystem
// in the image file `<path>.img` of exactly the PV's capacity, loop-mounted on the host at the
// path while the kubelet runs, so writing past the capacity fails with ENOSPC.
// Differs from a real cluster: the image is sparse; ext4's own metadata takes a little of the
// capacity; there are no reserved blocks (-m 0), so root hits ENOSPC at the same point as others.
import { existsSync, mkdirSync, openSync, closeSync, ftruncateSync, readFileSync, rmSync } from 'node:fs';
import { must, run } from './host.js';

const UNITS: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** Parses a Kubernetes quantity such as 1Gi, 500M, 1.5Gi or 1e9 into bytes. */
export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+(?:e[0-9]+)?)([a-zA-Z]*)$/.exec(q.trim());
  if (!m || !(m[2] in UNITS)) throw new Error(`quantity "${q}" is not understood; use a form like 1Gi or 500M`);
  return Math.ceil(Number(m[1]) * UNITS[m[2]]);
}

/** Mount source (device) of a mount point in the host's /proc/mounts, if mounted. */
export function mountedDevice(path: string): string | undefined {
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const [dev, mp] = line.split(' ');
    if (mp === path) return dev;
  }
  return undefined;
}

/** Mounts and unmounts the loop-backed filesystems of local PVs. */
export class LocalVolumes {
  private readonly mounted = new Map<string, Promise<void>>();
  private readonly devices = new Map<string, string>();

  /** Makes sure the PV at path is an ext4 filesystem of capacity bytes, mounted at path. */
  ensure(path: string, capacity: number): Promise<void> {
    let p = this.mounted.get(path);
    if (!p) {
      p = this.mount(path, capacity);
      this.mounted.set(path, p);
      p.catch(() => this.mounted.delete(path));
    }
    return p;
  }

  private async mount(path: string, capacity: number): Promise<void> {
    mkdirSync(path, { recursive: true });
    const existing = mountedDevice(path);
    if (existing) {
      this.devices.set(path, existing);
      return;
    }
    const img = `${path}.img`;
    if (!existsSync(img)) {
      const fd = openSync(img, 'w', 0o600);
      try { ftruncateSync(fd, capacity); } finally { closeSync(fd); }
      await must('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'nodiscard,root_owner=0:0', img]);
    }
    const dev = (await must('losetup', ['--find', '--show', img])).trim();
    try {
      await must('mount', ['-t', 'ext4', dev, path]);
    } catch (err) {
      await run('losetup', ['-d', dev]);
      throw err;
    }
    this.devices.set(path, dev);
  }

  /** Unmounts every PV this kubelet mounted and detaches its loop device. */
  async unmountAll(log: (m: string) => void): Promise<void> {
    for (const [path, dev] of this.devices) {
      let r = await run('umount', [path]);
      if (r.code !== 0) {
        log(`umount ${path}: ${r.stderr.trim()}; retrying lazily`);
        r = await run('umount', ['-l', path]);
      }
      await run('losetup', ['-d', dev]);
    }
    this.devices.clear();
    this.mounted.clear();
  }
}

/**
 * Destroys a local PV's storage, as a provisioner's deleter does for reclaim policy Delete: the
 * filesystem is unmounted (lazily, if a pod's mount namespace still holds it), its loop device
 * detached, and the image and mount point removed. The data is gone for good.
 */
export async function destroyLocalVolume(path: string): Promise<void> {
  if (mountedDevice(path)) await run('umount', ['-l', path]);
  const img = `${path}.img`;
  if (existsSync(img)) {
    const attached = await run('losetup', ['-j', img]);
    for (const line of attached.stdout.split('\n')) {
      const dev = line.split(':')[0]?.trim();
      if (dev) await run('losetup', ['-d', dev]);
    }
  }
  rmSync(img, { force: true });
  rmSync(path, { recursive: true, force: true });
}
