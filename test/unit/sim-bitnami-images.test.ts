// The simulator's bitnami/etcd image runs the stand-in scripts of the generation its tag names,
// and the `bitnami` fixture's `scripts` option picks that tag (test/sim/images.ts, fixtures/).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BITNAMI_OPTIONS, bitnamiManifests, bitnamiStatefulSet, placeholderBitnamiCa, withBitnamiOptions } from '../sim/fixtures/bitnami.js';
import { parseFixtureSpec } from '../sim/fixtures/index.js';
import { resolveImage } from '../sim/images.js';
import { readMember } from '../../src/etcd/discovery/index.js';

const IMAGES = resolve(import.meta.dirname, '../sim/images');
const GENERATIONS = ['bitnami-etcd', 'bitnami-etcd-debian-12'];
const scratch = mkdtempSync(join(tmpdir(), 'sim-bitnami-scripts-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * Runs a generation's setup.sh outside a pod: its paths (/opt/bitnami/scripts, /bitnami/etcd,
 * /snapshots) moved under a scratch dir, a member of three with data from before, and an etcdctl
 * that reaches no one (the other members do not answer).
 */
function runSetup(generation: string, env: Record<string, string>, snapshots: string[]): { code: number; stderr: string } {
  const root = mkdtempSync(join(scratch, `${generation}-`));
  const move = (text: string) => text
    .replaceAll('/opt/bitnami/scripts/libetcd.sh', join(root, 'libetcd.sh'))
    .replaceAll('/bitnami/etcd', join(root, 'volume'))
    .replaceAll('/snapshots', join(root, 'snapshots'));
  for (const f of ['libetcd.sh', 'setup.sh']) writeFileSync(join(root, f), move(readFileSync(join(IMAGES, generation, f), 'utf8')), { mode: 0o755 });
  mkdirSync(join(root, 'volume/data/member/snap'), { recursive: true });
  mkdirSync(join(root, 'snapshots'));
  for (const f of snapshots) writeFileSync(join(root, 'snapshots', f), '');
  mkdirSync(join(root, 'bin'));
  writeFileSync(join(root, 'bin/etcdctl'), '#!/bin/sh\necho "etcdctl $*" >&2\nexit 1\n');
  chmodSync(join(root, 'bin/etcdctl'), 0o755);
  const r = spawnSync('bash', [join(root, 'setup.sh')], {
    encoding: 'utf8',
    env: {
      PATH: `${join(root, 'bin')}:${process.env.PATH}`, ETCD_NAME: 'etcd-0',
      ETCD_INITIAL_CLUSTER: ['etcd-0', 'etcd-1', 'etcd-2'].map((m) => `${m}=http://${m}.etcd-headless:2380`).join(','),
      ETCD_INITIAL_CLUSTER_TOKEN: 't', ETCD_INITIAL_ADVERTISE_PEER_URLS: 'http://etcd-0.etcd-headless:2380', ...env,
    },
  });
  return { code: r.status ?? -1, stderr: r.stderr };
}

const prestopOf = (image: string) => resolveImage(image)?.files['/opt/bitnami/scripts/etcd/prestop.sh'];
const imageOf = (spec: string) => {
  const sts = bitnamiStatefulSet(withBitnamiOptions(BITNAMI_OPTIONS, parseFixtureSpec(spec).options)) as {
    spec: { template: { spec: { containers: Array<{ image: string }> } } };
  };
  return sts.spec.template.spec.containers[0]!.image;
};

describe('the bitnami image and fixture', () => {
  it.each([
    ['docker.io/bitnami/etcd:3.4.23-debian-11-r0', /\/bitnami-etcd\/prestop\.sh$/],
    ['bitnami/etcd:3.5.17-debian-12-r3', /\/bitnami-etcd-debian-12\/prestop\.sh$/],
    ['docker.io/bitnami/etcd:3.5.16-debian-12', /\/bitnami-etcd-debian-12\/prestop\.sh$/],
    ['docker.io/bitnami/etcd', /\/bitnami-etcd\/prestop\.sh$/],
  ])('%s runs the stand-ins %s', (image, path) => {
    expect(prestopOf(image)).toMatch(path);
  });

  it('scripts=debian-12 gives the debian-12 tag; the default stays legacy; other values are refused', () => {
    expect(imageOf('bitnami')).toMatch(/-debian-11-/);
    expect(imageOf('bitnami:scripts=debian-12')).toMatch(/-debian-12-/);
    expect(() => parseFixtureSpec('bitnami:scripts=debian-13')).toThrow(/use one of: debian-11, debian-12/);
  });

  it('disasterRecovery=true sets ETCD_DISASTER_RECOVERY=yes and mounts the shared etcd-snapshotter claim at /snapshots; the default has neither', () => {
    type Sts = { spec: { template: { spec: { volumes?: Array<{ name: string; persistentVolumeClaim?: { claimName: string } }>; containers: Array<{ env: Array<{ name: string; value?: string }>; volumeMounts: Array<{ name: string; mountPath: string }> }> } } } };
    const of = (spec: string) => {
      const objects = bitnamiManifests(withBitnamiOptions(BITNAMI_OPTIONS, parseFixtureSpec(spec).options), placeholderBitnamiCa());
      const sts = objects.find((o) => o['kind'] === 'StatefulSet') as Sts;
      const c = sts.spec.template.spec.containers[0]!;
      return {
        env: c.env.find((e) => e.name === 'ETCD_DISASTER_RECOVERY')?.value,
        snapshots: c.volumeMounts.find((m) => m.mountPath === '/snapshots')?.name,
        claim: sts.spec.template.spec.volumes?.find((v) => v.name === 'snapshot-volume')?.persistentVolumeClaim?.claimName,
        kinds: objects.map((o) => o['kind']),
        claimModes: (objects.find((o) => o['kind'] === 'PersistentVolumeClaim') as { spec: { accessModes: string[] } } | undefined)?.spec.accessModes,
      };
    };
    expect(of('bitnami:disasterRecovery=true')).toEqual({
      env: 'yes', snapshots: 'snapshot-volume', claim: 'etcd-snapshotter',
      kinds: ['Namespace', 'Secret', 'Service', 'Service', 'PersistentVolume', 'PersistentVolumeClaim', 'StatefulSet'], claimModes: ['ReadWriteMany'],
    });
    expect(of('bitnami')).toEqual({ env: 'no', snapshots: undefined, claim: undefined, kinds: ['Namespace', 'Secret', 'Service', 'Service', 'StatefulSet'], claimModes: undefined });
    expect(() => parseFixtureSpec('bitnami:disasterRecovery=yes')).toThrow(/use one of: false, true/);
  });
});

describe('the stand-in scripts read ETCD_DISASTER_RECOVERY as the image does, and as discovery does', () => {
  it.each(['yes', 'YES', 'True', 'true', '1', 'no', 'false', '0', 'on', 'y', ''])('%j', (value) => {
    const product = readMember({
      metadata: { name: 'etcd-0', namespace: 'etcd' },
      spec: { containers: [{ name: 'etcd', image: 'docker.io/bitnami/etcd:3.5.17-debian-12-r0', env: [{ name: 'ETCD_DISASTER_RECOVERY', value }] }] },
    })?.startScripts?.disasterRecovery;
    for (const generation of GENERATIONS) {
      const lib = join(IMAGES, generation, 'libetcd.sh');
      const script = `. "$1"; if is_boolean_yes "$2"; then echo on; else echo off; fi`;
      const standIn = execFileSync('bash', ['-c', script, 'bash', lib, value], { encoding: 'utf8' }).trim();
      expect(standIn, generation).toBe(product ? 'on' : 'off');
    }
  });
});

describe('the stand-in setup.sh of a member with data whose peers do not answer', () => {
  it.each(GENERATIONS)('%s: disaster recovery on and no snapshot in /snapshots fails the start (exit 1), as the real etcd_initialize', (generation) => {
    const r = runSetup(generation, { ETCD_DISASTER_RECOVERY: 'True' }, []);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/ERROR ==> There was no snapshot to restore!\n$/);
  });

  it.each(GENERATIONS)('%s: disaster recovery off keeps the data and starts (exit 0)', (generation) => {
    const r = runSetup(generation, { ETCD_DISASTER_RECOVERY: 'no' }, ['db-2026-01-01_00-00']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Disaster recovery is disabled/);
  });
});
