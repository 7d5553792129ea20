// The simulator's bitnami/etcd image runs the stand-in scripts of the generation its tag names,
// and the `bitnami` fixture's `scripts` option picks that tag (test/sim/images.ts, fixtures/).
import { describe, expect, it } from 'vitest';
import { BITNAMI_OPTIONS, bitnamiStatefulSet, withBitnamiOptions } from '../sim/fixtures/bitnami.js';
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
});
