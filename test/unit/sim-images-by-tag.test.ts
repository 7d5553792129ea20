// The simulator's image table picks an etcd image's binaries by the version its tag names
// (test/sim/images.ts, etcd-versions.ts), and every fixture takes `etcd=3.4|3.5`.
import { describe, expect, it } from 'vitest';
import { etcdBinaries, etcdRelease, tagMinor } from '../sim/etcd-versions.js';
import { loadFixtureBuild, parseFixtureSpec, withFixtureOption } from '../sim/fixtures/index.js';
import { pullImage } from '../sim/images.js';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const filesOf = (image: string) => {
  const r = pullImage(image);
  if (!('spec' in r)) throw new Error(r.why);
  return r.spec.files;
};

describe('etcd images by tag', () => {
  it.each([
    ['3.5.16-0', '3.5'], ['v3.5.16', '3.5'], ['v3.4.23-0-gke.1', '3.4'], ['3.5.16-debian-12-r0', '3.5'], ['v3.6.4', '3.6'],
    ['latest', undefined], [undefined, undefined],
  ])('tag %s names minor %s', (tag, minor) => {
    expect(tagMinor(tag)).toBe(minor);
  });

  it.each([
    ['registry.k8s.io/etcd:3.5.16-0', '/usr/local/bin'],
    ['gcr.io/etcd-development/etcd:v3.5.16', '/usr/local/bin'],
    ['quay.io/coreos/etcd:v3.5.16', '/usr/local/bin'],
    ['gcr.io/gke-on-prem-release/etcd:v3.5.16-0-gke.1', '/usr/local/bin'],
    ['bitnami/etcd:3.5.16-debian-12-r0', '/opt/bitnami/etcd/bin'],
  ])('%s runs the 3.5 binaries, etcdutl included', (image, dir) => {
    const files = filesOf(image);
    const b = etcdBinaries('3.5');
    expect([files[`${dir}/etcd`], files[`${dir}/etcdctl`], files[`${dir}/etcdutl`]]).toEqual([b.etcd, b.etcdctl, b.etcdutl]);
  });

  it('a 3.4 tag (or none) runs the 3.4 binaries and has no etcdutl', () => {
    for (const image of ['registry.k8s.io/etcd:3.4.23-0', 'quay.io/coreos/etcd', 'bitnami/etcd:3.4.23-debian-11-r0']) {
      const files = filesOf(image);
      expect(Object.values(files)).toContain('/usr/bin/etcd');
      expect(Object.keys(files).some((p) => p.endsWith('/etcdutl'))).toBe(false);
    }
  });

  it('a tag of a version the cluster has no binaries for cannot be pulled; non-etcd images ignore versions', () => {
    const r = pullImage('gcr.io/etcd-development/etcd:v3.6.4');
    expect('why' in r && r.why).toMatch(/^rpc error: code = NotFound desc = failed to pull and unpack image "gcr\.io\/etcd-development\/etcd:v3\.6\.4": .*not found .*no etcd 3\.6 binaries/);
    expect('spec' in pullImage('busybox:1.36')).toBe(true);
    expect('why' in pullImage('example.com/nothing:3.5.0')).toBe(true);
  });
});

describe('the etcd option of every fixture', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fixture-etcd-'));
  // The images of the API objects, and of the static pod files a fixture writes on its nodes (kubeadm).
  const imagesOf = async (spec: string) => {
    const build = await loadFixtureBuild(spec, { dir });
    const fromApi = JSON.stringify(build.objects).match(/"image":"[^"]+"/g)?.map((m) => m.slice(9, -1)) ?? [];
    const files = build.staticPods ? readdirSync(join(dir, 'nodes')).flatMap((n) => {
      const d = join(dir, 'nodes', n, 'hostpath/etc/kubernetes/manifests');
      return readdirSync(d).map((f) => readFileSync(join(d, f), 'utf8'));
    }) : [];
    return [...fromApi, ...files.flatMap((t) => [...t.matchAll(/^\s*image: (\S+)$/gm)].map((m) => m[1]!))];
  };

  it.each(['anthos', 'single', 'bitnami', 'kubeadm'])('%s: 3.4 by default, etcd=3.5 tags every etcd image 3.5.x', async (name) => {
    const release = etcdRelease('3.5');
    const etcdImages = (images: string[]) => images.filter((i) => /etcd/.test(i));
    expect(etcdImages(await imagesOf(name)).every((i) => /[:v]3\.4\.23/.test(i))).toBe(true);
    const on35 = etcdImages(await imagesOf(`${name}:etcd=3.5`));
    expect(on35.length).toBeGreaterThan(0);
    expect(on35.every((i) => i.includes(release))).toBe(true);
  });

  it('refuses a minor the cluster does not run; withFixtureOption adds the option once', () => {
    expect(() => parseFixtureSpec('anthos:etcd=3.6')).toThrow(/use one of: 3\.4, 3\.5/);
    expect(withFixtureOption('anthos', 'etcd', '3.5')).toBe('anthos:etcd=3.5');
    expect(withFixtureOption('single:whenScaled=Delete', 'etcd', '3.5')).toBe('single:whenScaled=Delete,etcd=3.5');
    expect(withFixtureOption('bitnami:etcd=3.4', 'etcd', '3.5')).toBe('bitnami:etcd=3.4');
  });
});
