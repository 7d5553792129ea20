/**
 * Just enough POSIX shell to read container commands such as
 * `sh -c "exec etcd --name=${HOSTNAME} …"` and to write safe ones: words with quotes and
 * escapes, `$VAR`/`${VAR}` expansion, and command lists split on `;`, `&&`, `||`, `|`, `&`,
 * newlines. Command substitution and globbing are left as literal text.
 */

/** Looks up a variable for `$VAR` expansion; undefined leaves the reference as written. */
export type ShellLookup = (name: string) => string | undefined;

const OPERATORS = [';;', '&&', '||', ';', '|', '&', '\n'];

/** Splits a shell script into simple commands, each a list of words after quote removal and expansion. */
export function splitShellCommands(script: string, lookup: ShellLookup = () => undefined): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  const endWord = (): void => {
    if (inWord) words.push(word);
    word = '';
    inWord = false;
  };
  const endCommand = (): void => {
    endWord();
    if (words.length) commands.push(words);
    words = [];
  };
  let i = 0;
  while (i < script.length) {
    const ch = script[i]!;
    const op = OPERATORS.find((o) => script.startsWith(o, i));
    if (op) {
      endCommand();
      i += op.length;
    } else if (ch === ' ' || ch === '\t' || ch === '\r') {
      endWord();
      i++;
    } else if (ch === '#' && !inWord) {
      while (i < script.length && script[i] !== '\n') i++;
    } else if (ch === '\\') {
      if (script[i + 1] === '\n') i += 2;
      else {
        word += script[i + 1] ?? '';
        inWord = true;
        i += 2;
      }
    } else if (ch === "'") {
      const end = script.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated single quote in shell command "${script}"`);
      word += script.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (ch === '"') {
      i = readDoubleQuoted(script, i + 1, lookup, (s) => (word += s));
      inWord = true;
    } else if (ch === '$') {
      const [text, next] = readDollar(script, i, lookup);
      word += text;
      inWord = true;
      i = next;
    } else {
      word += ch;
      inWord = true;
      i++;
    }
  }
  endCommand();
  return commands;
}

function readDoubleQuoted(s: string, start: number, lookup: ShellLookup, emit: (t: string) => void): number {
  let i = start;
  while (i < s.length) {
    const ch = s[i]!;
    if (ch === '"') return i + 1;
    if (ch === '\\' && '$`"\\\n'.includes(s[i + 1] ?? '')) {
      if (s[i + 1] !== '\n') emit(s[i + 1]!);
      i += 2;
    } else if (ch === '$') {
      const [text, next] = readDollar(s, i, lookup);
      emit(text);
      i = next;
    } else {
      emit(ch);
      i++;
    }
  }
  throw new Error(`unterminated double quote in shell command "${s}"`);
}

function readDollar(s: string, i: number, lookup: ShellLookup): [string, number] {
  if (s[i + 1] === '{') {
    const end = s.indexOf('}', i + 2);
    if (end < 0) return ['$', i + 1];
    const inner = s.slice(i + 2, end);
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(inner)?.[0] ?? '';
    const rest = inner.slice(name.length);
    const value = name ? lookup(name) : undefined;
    if (rest.startsWith(':-') || rest.startsWith('-')) {
      const fallback = rest.slice(rest.startsWith(':-') ? 2 : 1);
      return [value !== undefined && (value !== '' || rest.startsWith('-')) ? value : fallback, end + 1];
    }
    return [value ?? s.slice(i, end + 1), end + 1];
  }
  if (s[i + 1] === '(') {
    let depth = 0;
    for (let j = i + 1; j < s.length; j++) {
      if (s[j] === '(') depth++;
      else if (s[j] === ')' && --depth === 0) return [s.slice(i, j + 1), j + 1];
    }
    return [s.slice(i), s.length];
  }
  const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(i + 1))?.[0];
  if (!name) return ['$', i + 1];
  return [lookup(name) ?? `$${name}`, i + 1 + name.length];
}

/** Quotes one argument for a POSIX shell; plain words stay unquoted. */
export function shellQuote(arg: string): string {
  if (arg !== '' && /^[A-Za-z0-9_\-.,:/=@%+]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
