// A node's own disk: an ext4 filesystem in an image file (DIR/nodes/NODE/disks/NAME.img, sparse),
// loop-mounted at a folder of the node's hostPath root, so that writing past its size fails with
// ENOSPC there and nowhere else. Control-plane nodes often give etcd a disk of its own (etcd's
// hardware guide: operations/hardware.md, "Disks"; kubeadm leaves /var/lib/etcd to the host), and
// a full one is what a restore must survive on one node while the others go on. `down` unmounts
// them (after the kubelet has stopped every pod), `fill-volume NODE:/PATH` fills one.
// Differs from a real node: the disk is mounted on the host, under the cluster dir.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { mountedDevice } from './kubelet/localpv.js';
import { join } from 'node:path';

/** The host folder of a path on a node (its hostPath root). */
export function nodePath(dir: string, node: string, path: string): string {
  return join(dir, 'nodes', node, 'hostpath', path);
}

/** Makes `path` on `node` a disk of its own of `bytes` (mounted once; again after a restart of the machine's mounts). */
export function mountNodeDisk(dir: string, node: string, path: string, bytes: number): string {
  const at = nodePath(dir, node, path);
  mkdirSync(at, { recursive: true });
  if (mountedDevice(at)) return at;
  const img = join(dir, 'nodes', node, 'disks', `${path.replace(/^\/+/, '').replace(/\//g, '_')}.img`);
  mkdirSync(join(dir, 'nodes', node, 'disks'), { recursive: true, mode: 0o700 });
  if (!existsSync(img)) {
    const fd = openSync(img, 'w', 0o600);
    try { ftruncateSync(fd, bytes); } finally { closeSync(fd); }
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'nodiscard,root_owner=0:0', img], { stdio: 'pipe' });
  }
  const dev = execFileSync('losetup', ['--find', '--show', img], { encoding: 'utf8' }).trim();
  const r = spawnSync('mount', ['-t', 'ext4', dev, at], { encoding: 'utf8' });
  if (r.status !== 0) {
    spawnSync('losetup', ['-d', dev]);
    throw new Error(`cannot mount the disk of ${node}:${path}: ${r.stderr.trim()}`);
  }
  return at;
}

/** Unmounts every node disk of the cluster and detaches its loop device; returns what could not be. */
export function unmountNodeDisks(dir: string): string[] {
  const left: string[] = [];
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[1]?.startsWith(join(dir, 'nodes')) && f[1].includes('/hostpath/') && f[0]?.startsWith('/dev/loop'));
  for (const [dev, at] of mounts) {
    let r = spawnSync('umount', [at!], { encoding: 'utf8' });
    if (r.status !== 0) r = spawnSync('umount', ['-l', at!], { encoding: 'utf8' });
    if (r.status !== 0) left.push(`${at}: ${r.stderr.trim()}`);
    spawnSync('losetup', ['-d', dev!]);
  }
  return left;
}

/** The mounted node disk `NODE:/PATH` names, or an error saying what is wrong. */
export function nodeDiskPath(dir: string, ref: string): string {
  const m = /^([^/:]+):(\/.*)$/.exec(ref);
  if (!m) throw new Error(`"${ref}" is not NODE:/PATH`);
  const at = nodePath(dir, m[1]!, m[2]!);
  if (!mountedDevice(at)) throw new Error(`${ref} is not a disk of its own on that node (only the kubeadm fixture's /var/lib/etcd is)`);
  return at;
}
