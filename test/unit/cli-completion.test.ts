import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { complete, Directive, formatCompletion, type CompletionSources } from '../../src/cli/completion.js';
import type { KubeFlags } from '../../src/kube/config.js';

// The completion logic with small fake sources; the real thing through kubectl is in
// test/e2e/manners.test.ts and test/e2e/release.test.ts.
const seen: KubeFlags[] = [];
const sources: CompletionSources = {
  namespaces: async (flags) => (seen.push(flags), ['default', 'kube-system', 'uc1']),
  statefulSets: async (flags) => (seen.push(flags), flags.namespace === 'uc1' ? ['kube-apiserver', 'kube-etcd'] : []),
  pods: async (flags) => (flags.namespace === 'uc1' ? ['kube-etcd-0', 'kube-apiserver-0'] : []),
  contexts: async () => ['sim', 'other'],
  readDir: async (dir) =>
    dir === '.' ? [{ name: 'a.db', isDirectory: false }, { name: 'b.txt', isDirectory: false }, { name: 'snaps', isDirectory: true }, { name: '.hidden.db', isDirectory: false }] : [],
};
const names = (args: string[]) => complete(buildProgram(), args, sources).then((r) => ({ ...r, candidates: r.candidates.map((c) => c.split('\t')[0]) }));

describe('completion', () => {
  it.each<[string[], string[], number]>([
    [['ba'], ['backup'], Directive.noFileComp],
    [['backup', '--via', ''], ['exec', 'stream'], Directive.noFileComp],
    [['backup', '--via=s'], ['--via=stream'], Directive.noFileComp],
    [['status', '-o', ''], ['json', 'yaml', 'table'], Directive.noFileComp],
    [['backup', '-o', ''], ['json', 'yaml'], Directive.noFileComp],
    [['-n', 'u'], ['uc1'], Directive.noFileComp],
    [['--context', ''], ['sim', 'other'], Directive.noFileComp],
    [['-n', 'uc1', 'status', '--pod', 'kube-e'], ['kube-etcd-0'], Directive.noFileComp],
    [['backup', '-f', ''], [], Directive.default],
    [['backup', '--dir', ''], [], Directive.filterDirs],
    [['inspect', ''], ['a.db', 'snaps/'], Directive.noFileComp | Directive.noSpace],
    [['inspect', 'a.db', ''], [], Directive.noFileComp],
    [['inspect', 'zz'], [], Directive.default],
    [['nosuch', ''], [], Directive.noFileComp],
    [['version', '--h'], ['--help'], Directive.noFileComp],
  ])('%o → %o', async (args, candidates, directive) => {
    expect(await names(args)).toEqual({ candidates, directive });
  });

  it('reads the kube flags typed before the word, wherever they stand', async () => {
    seen.length = 0;
    expect((await names(['--context', 'other', 'backup', '-n', 'uc1', '--statefulset', 'kube-e'])).candidates).toEqual(['kube-etcd']);
    expect(seen).toEqual([{ context: 'other', namespace: 'uc1' }]);
  });

  it('offers flags of the command and the global ones', async () => {
    const r = await names(['backup', '--c']);
    expect(r.candidates).toEqual(expect.arrayContaining(['--container', '--cacert', '--cert', '--context', '--cluster', '--certificate-authority']));
  });

  it('stays quiet when the cluster cannot be asked', async () => {
    const failing = { ...sources, namespaces: () => Promise.reject(new Error('connection refused')) };
    expect(await complete(buildProgram(), ['-n', ''], failing)).toEqual({ candidates: [], directive: Directive.noFileComp });
  });

  it('writes cobra’s format: candidates, then :directive; descriptions only when asked', () => {
    const r = { candidates: ['backup\ttake a snapshot'], directive: 4 };
    expect(formatCompletion(r)).toBe('backup\ttake a snapshot\n:4\n');
    expect(formatCompletion(r, false)).toBe('backup\n:4\n');
  });
});
