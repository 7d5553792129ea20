/**
 * Shell completion for kubectl's plugin completion (kubectl 1.26+). For `kubectl etcd … <TAB>`
 * kubectl runs `kubectl_complete-etcd WORD… CURRENT` (the words after "etcd", then the word being
 * completed, "" when empty); that script runs `kubectl-etcd __complete WORD… CURRENT`, which lands
 * here. The answer is cobra's protocol: one candidate per line ("value\tdescription"), then
 * ":<directive>" on the last line.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command, Option } from 'commander';
import type { KubeFlags } from '../kube/config.js';

/** Cobra's ShellCompDirective bits, which kubectl passes on to the shell. */
export const Directive = { default: 0, error: 1, noSpace: 2, noFileComp: 4, filterFileExt: 8, filterDirs: 16 } as const;

/** What the shell is offered. */
export interface Completion {
  candidates: string[];
  directive: number;
}

/** Where dynamic candidates come from; the CLI passes the cluster and the file system, tests small fakes. */
export interface CompletionSources {
  namespaces(flags: KubeFlags): Promise<string[]>;
  statefulSets(flags: KubeFlags): Promise<string[]>;
  pods(flags: KubeFlags): Promise<string[]>;
  contexts(flags: KubeFlags): Promise<string[]>;
  readDir(dir: string): Promise<{ name: string; isDirectory: boolean }[]>;
}

/** Flags whose value names a local file: the shell's own file completion fits them best. */
const FILE_VALUED = new Set(['--kubeconfig', '--file', '--cacert', '--cert', '--key', '--certificate-authority']);
/** Commands whose first argument is a snapshot file. */
const SNAPSHOT_COMMANDS = new Set(['inspect', 'restore']);

/** Answers one completion request: `args` are the words after "etcd", the last one being completed. */
export async function complete(program: Command, args: string[], sources: CompletionSources): Promise<Completion> {
  const words = args.slice(0, -1);
  const current = args.at(-1) ?? '';
  const state = walk(program, words);
  if (state.unknownCommand) return { candidates: [], directive: Directive.noFileComp };
  const options = [...(state.command?.options ?? []), ...program.options] as Option[];

  const inline = /^(--[^=]+)=(.*)$/.exec(current);
  if (inline) {
    const option = findOption(options, inline[1]!);
    if (!option || !takesValue(option)) return { candidates: [], directive: Directive.noFileComp };
    const values = await valueCandidates(option, inline[2]!, state, sources);
    return { candidates: values.candidates.map((v) => `${inline[1]}=${v}`), directive: values.directive };
  }
  if (state.pendingValueOf) return valueCandidates(state.pendingValueOf, current, state, sources);
  if (current.startsWith('-')) {
    const flags = options.filter((o) => !o.hidden).map((o) => ({ names: [o.long, o.short], description: o.description }));
    flags.push({ names: ['--help', '-h'], description: 'show help with examples' });
    const candidates = flags.flatMap((o) => o.names.filter((f): f is string => !!f && f.startsWith(current)).map((f) => `${f}\t${o.description}`));
    return { candidates, directive: Directive.noFileComp };
  }
  if (!state.command) {
    const candidates = program.commands
      .filter((c) => c.name().startsWith(current))
      .map((c) => `${c.name()}\t${c.description()}`);
    return { candidates, directive: Directive.noFileComp };
  }
  if (SNAPSHOT_COMMANDS.has(state.command.name()) && state.positionals === 0) return snapshotFiles(current, sources);
  return { candidates: [], directive: Directive.noFileComp };
}

interface WalkState {
  command?: Command;
  positionals: number;
  /** Set when the last word was a flag still waiting for its value. */
  pendingValueOf?: Option;
  /** Set when a word names no command: nothing sensible to offer after it. */
  unknownCommand?: boolean;
  flags: KubeFlags;
}

/** Reads the words already typed: the subcommand, the kube flags given, a flag awaiting its value. */
function walk(program: Command, words: string[]): WalkState {
  const state: WalkState = { positionals: 0, flags: {} };
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    const options = [...(state.command?.options ?? []), ...program.options] as Option[];
    if (word.startsWith('-') && word !== '-') {
      const eq = word.indexOf('=');
      const option = findOption(options, eq > 0 ? word.slice(0, eq) : word);
      if (!option || !takesValue(option)) continue;
      if (eq > 0) recordFlag(state.flags, option, word.slice(eq + 1));
      else if (i + 1 < words.length) recordFlag(state.flags, option, words[++i]!);
      else state.pendingValueOf = option;
      continue;
    }
    if (!state.command) {
      state.command = program.commands.find((c) => c.name() === word || c.aliases().includes(word));
      if (!state.command) return { ...state, unknownCommand: true };
    } else {
      state.positionals++;
    }
  }
  return state;
}

function findOption(options: Option[], flag: string): Option | undefined {
  return options.find((o) => o.long === flag || o.short === flag);
}

function takesValue(option: Option): boolean {
  return option.required || option.optional;
}

const KUBE_FLAG_KEYS: Record<string, keyof KubeFlags> = {
  '--kubeconfig': 'kubeconfig',
  '--context': 'context',
  '--cluster': 'cluster',
  '--user': 'user',
  '--namespace': 'namespace',
  '--server': 'server',
  '--token': 'token',
  '--certificate-authority': 'certificateAuthority',
};

function recordFlag(flags: KubeFlags, option: Option, value: string): void {
  const key = option.long ? KUBE_FLAG_KEYS[option.long] : undefined;
  if (key) (flags as Record<string, string>)[key] = value;
}

async function valueCandidates(option: Option, current: string, state: WalkState, sources: CompletionSources): Promise<Completion> {
  const long = option.long ?? option.short ?? '';
  if (FILE_VALUED.has(long)) return { candidates: [], directive: Directive.default };
  if (long === '--dir') return { candidates: [], directive: Directive.filterDirs };
  const starting = (values: string[]) => values.filter((v) => v.startsWith(current));
  const quietly = async (load: () => Promise<string[]>) => starting(await load().catch(() => []));
  let values: string[];
  if (option.argChoices) values = starting(option.argChoices);
  else if (long === '--output') values = starting(outputFormats(state.command?.name()));
  else if (long === '--namespace') values = await quietly(() => sources.namespaces(state.flags));
  else if (long === '--statefulset') values = await quietly(() => sources.statefulSets(state.flags));
  else if (long === '--pod') values = await quietly(() => sources.pods(state.flags));
  else if (long === '--context') values = await quietly(() => sources.contexts(state.flags));
  else values = [];
  return { candidates: values, directive: Directive.noFileComp };
}

function outputFormats(command: string | undefined): string[] {
  return command === 'status' || command === 'inspect' ? ['json', 'yaml', 'table'] : ['json', 'yaml'];
}

/** Snapshot files (*.db, and etcd's raw member/snap/db) and directories under what is typed so far. */
async function snapshotFiles(current: string, sources: CompletionSources): Promise<Completion> {
  const slash = current.lastIndexOf('/');
  const dirPart = slash >= 0 ? current.slice(0, slash + 1) : '';
  const base = slash >= 0 ? current.slice(slash + 1) : current;
  const entries = await sources.readDir(dirPart === '' ? '.' : dirPart).catch(() => []);
  const visible = entries.filter((e) => e.name.startsWith(base) && (base.startsWith('.') || !e.name.startsWith('.')));
  const dirs = visible.filter((e) => e.isDirectory).map((e) => `${dirPart}${e.name}/`);
  const files = visible.filter((e) => !e.isDirectory && (e.name.endsWith('.db') || e.name === 'db')).map((e) => `${dirPart}${e.name}`);
  if (files.length === 0 && dirs.length === 0) return { candidates: [], directive: Directive.default };
  const candidates = [...files.sort(), ...dirs.sort()];
  return { candidates, directive: Directive.noFileComp | (dirs.length > 0 ? Directive.noSpace : 0) };
}

/** The cobra wire format: candidates one per line, then the directive. */
export function formatCompletion(result: Completion, withDescriptions = true): string {
  const lines = result.candidates.map((c) => (withDescriptions ? c : c.split('\t')[0]!));
  return [...lines, `:${result.directive}`].join('\n') + '\n';
}

/** Reads a directory for completion. */
export async function readDirEntries(dir: string): Promise<{ name: string; isDirectory: boolean }[]> {
  const entries = await fs.readdir(path.resolve(dir), { withFileTypes: true });
  return entries.map((e) => ({ name: e.name, isDirectory: e.isDirectory() }));
}
