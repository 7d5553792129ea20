// The simulator's bitnami/etcd image runs the stand-in scripts of the generation its tag names,
// and the `bitnami` fixture's `scripts` option picks that tag (test/sim/images.ts, fixtures/).
import { describe, expect, it } from 'vitest';
import { BITNAMI_OPTIONS, bitnamiManifests, bitnamiStatefulSet, placeholderBitnamiCa, withBitnamiOptions } from '../sim/fixtures/bitnami.js';
import { parseFixtureSpec } from '../sim/fixtures/index.js';
import { resolveImage } from '../sim/images.js';

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
