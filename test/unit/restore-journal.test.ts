import { describe, expect, it } from 'vitest';
import { existsSync, lstatSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ForbiddenError } from '../../src/errors.js';
import {
  Journal, configMapJournalStore, fileJournalStore, journalConfigMapName, workloadsWithClusterJournal,
  type ConfigMapAccess, type JournalState,
} from '../../src/restore/journal.js';

// The journal's two copies with real files and a small in-memory ConfigMap fake: an unreadable
// copy is an error (never "no restore in progress"), each workload has its own ConfigMap, and the
// local file is written through a temporary name that is never a link someone left there.

function configMaps(fail?: Error): ConfigMapAccess & { maps: Map<string, { data: Record<string, string>; labels: Record<string, string> }> } {
  const maps = new Map<string, { data: Record<string, string>; labels: Record<string, string> }>();
  return {
    maps,
    listConfigMaps: async (ns, selector) => {
      if (fail) throw fail;
      const want = selector.split(',').map((kv) => kv.split('='));
      return [...maps.entries()].filter(([k, v]) => k.startsWith(`${ns}/`) && want.every(([a, b]) => v.labels[a!] === b)).map(([k]) => k.slice(ns.length + 1));
    },
    readConfigMap: async (ns, name) => {
      if (fail) throw fail;
      return maps.get(`${ns}/${name}`)?.data;
    },
    writeConfigMap: async (ns, name, data, labels) => { maps.set(`${ns}/${name}`, { data, labels }); },
    deleteConfigMap: async (ns, name) => { maps.delete(`${ns}/${name}`); },
  };
}

function state(workload: string): JournalState {
  return {
    version: 4, stamp: 'S', namespace: 'uc1', workload, snapshot: { path: 's.db', sha256: 'ab', revision: 1, totalKey: 1 },
    etcdReplicas: 3, quiesce: [], pdbs: [], done: [], phase: 'running', plan: { steps: [] } as never, startedAt: '', updatedAt: '',
  };
}

const dir = () => mkdtempSync(join(tmpdir(), 'restore-journal-'));

describe('reading a journal that cannot be read (E1)', () => {
  it.each([
    ['not JSON', '{"version": 1, "done": [', /^the restore journal ".*restore-uc1-kube-etcd\.json" is not valid JSON/],
    ['JSON but not a journal', '{"hello": "world"}', /^the restore journal ".*" is not a kubectl-etcd journal/],
  ])('a local file that is %s throws naming the file', async (_what, text, message) => {
    const path = join(dir(), 'restore-uc1-kube-etcd.json');
    writeFileSync(path, text);
    const journal = new Journal([fileJournalStore(path)], () => new Date());
    await expect(journal.load()).rejects.toThrow(message);
    await expect(journal.load()).rejects.toMatchObject({ hint: expect.stringMatching(/restore may be in progress/) });
  });

  it('a journal an earlier version wrote (3: utility pods as they were planned before they inherited from their member) is refused, naming the version that finishes it', async () => {
    const path = join(dir(), 'restore-uc1-kube-etcd.json');
    writeFileSync(path, JSON.stringify({ version: 3, plan: {}, done: [] }));
    const journal = new Journal([fileJournalStore(path)], () => new Date());
    await expect(journal.load()).rejects.toThrow(/was written by an older kubectl-etcd \(journal version 3\)$/);
    await expect(journal.load()).rejects.toMatchObject({ hint: expect.stringMatching(/^finish it with that version/) });
  });

  it('a ConfigMap the user may not read throws naming it and the next step', async () => {
    const api = configMaps(new ForbiddenError('user "u" cannot get "configmaps" in namespace "uc1"'));
    const journal = new Journal([configMapJournalStore(api, 'uc1', 'kube-etcd')], () => new Date());
    const err = (await journal.load().then(() => undefined, (e: unknown) => e)) as (Error & { hint?: string }) | undefined;
    expect(err?.message).toBe('cannot read the restore journal in configmap "kubectl-etcd-restore-journal-kube-etcd" in namespace "uc1": user "u" cannot get "configmaps" in namespace "uc1"');
    expect(err?.hint).toMatch(/kubectl auth can-i get configmaps -n uc1/);
    await expect(workloadsWithClusterJournal(api, 'uc1')).rejects.toThrow(/cannot list restore journals/);
  });

  it('a missing file and a missing ConfigMap still mean "no restore in progress"', async () => {
    const journal = new Journal([fileJournalStore(join(dir(), 'x.json')), configMapJournalStore(configMaps(), 'uc1', 'kube-etcd')], () => new Date());
    await expect(journal.load()).resolves.toBeUndefined();
  });
});

describe('one journal per workload (D5)', () => {
  it('a restore of one StatefulSet is invisible to --resume of another, and both are listed', async () => {
    const api = configMaps();
    const a = new Journal([configMapJournalStore(api, 'uc1', 'etcd-a')], () => new Date());
    const b = new Journal([configMapJournalStore(api, 'uc1', 'etcd-b')], () => new Date());
    await a.save(state('etcd-a'));
    expect([...api.maps.keys()]).toEqual([`uc1/${journalConfigMapName('etcd-a')}`]);
    await expect(b.load()).resolves.toBeUndefined();
    await b.save(state('etcd-b'));
    expect((await a.load())?.workload).toBe('etcd-a');
    expect(await workloadsWithClusterJournal(api, 'uc1')).toEqual(['etcd-a', 'etcd-b']);
  });

  it('a ConfigMap holding another workload\'s journal is refused', async () => {
    const api = configMaps();
    await api.writeConfigMap('uc1', journalConfigMapName('etcd-b'), { 'journal.json': JSON.stringify(state('etcd-a')) }, {});
    await expect(configMapJournalStore(api, 'uc1', 'etcd-b').load()).rejects.toThrow(/is for uc1\/etcd-a/);
  });
});

describe('the local file (S6)', () => {
  it('is written 0600 through a temporary name that is never followed as a link', async () => {
    const d = dir();
    const path = join(d, 'restore-uc1-kube-etcd.json');
    const victim = join(d, 'victim');
    writeFileSync(victim, 'keep me');
    symlinkSync(victim, `${path}.tmp`);
    await fileJournalStore(path).save(state('kube-etcd'));
    expect(readFileSync(victim, 'utf8')).toBe('keep me');
    expect(lstatSync(path).isFile()).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path, 'utf8')).workload).toBe('kube-etcd');
  });
});

describe('closing the journal (E2)', () => {
  it('removes the cluster copy before the local one, so an interruption leaves the trusted local copy', async () => {
    const d = dir();
    const path = join(d, 'restore-uc1_kube-etcd.json');
    const cms = configMaps();
    const order: string[] = [];
    const file = fileJournalStore(path);
    const cluster = configMapJournalStore(cms, 'uc1', 'kube-etcd');
    const journal = new Journal([
      { ...file, remove: async () => { order.push('local'); await file.remove(); } },
      { ...cluster, remove: async () => { order.push('cluster'); await cluster.remove(); } },
    ], () => new Date());
    await journal.save(state('kube-etcd'));
    expect(await journal.remove()).toEqual([]);
    expect(order).toEqual(['cluster', 'local']);
    expect(existsSync(path)).toBe(false);
    expect(cms.maps.size).toBe(0);
  });

  it('reports a copy it could not remove, naming it, and keeps the local copy', async () => {
    const d = dir();
    const path = join(d, 'restore-uc1_kube-etcd.json');
    const cms = configMaps();
    cms.deleteConfigMap = async () => { throw new ForbiddenError('configmaps "x" is forbidden: User "bob" cannot delete'); };
    const journal = new Journal([fileJournalStore(path), configMapJournalStore(cms, 'uc1', 'kube-etcd')], () => new Date());
    await journal.save(state('kube-etcd'));
    const left = await journal.remove();
    // The local copy stays: the restore is not forgotten while a copy others can edit remains.
    expect(left).toEqual([`configmap "${journalConfigMapName('kube-etcd')}" in namespace "uc1" (configmaps "x" is forbidden: User "bob" cannot delete)`, `"${path}"`]);
    expect(existsSync(path)).toBe(true);
  });
});

describe('saves that overlap', () => {
  it('members whose steps finish together each get their step recorded, in a file written whole (real files)', async () => {
    const path = join(dir(), 'restore-uc1-kube-etcd.json');
    const journal = new Journal([fileJournalStore(path)], () => new Date());
    const state = { version: 2, plan: {}, done: [] as string[], updatedAt: '' } as unknown as Parameters<Journal['save']>[0];
    const ids = Array.from({ length: 12 }, (_, i) => `copy/kube-etcd-${i}`);
    await Promise.all(ids.map((id) => journal.markDone(state, id)));
    expect((JSON.parse(readFileSync(path, 'utf8')) as { done: string[] }).done.sort()).toEqual([...ids].sort());
    expect(existsSync(`${path}.tmp`)).toBe(false);
  });
});
