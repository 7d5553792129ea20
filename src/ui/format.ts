import { UsageError } from '../errors.js';

/** Machine-readable output formats accepted by `-o`. */
export type OutputFormat = 'json' | 'yaml';

/** Validates the value of `-o`; undefined means the human format. */
export function parseOutputFormat(value: string | undefined): OutputFormat | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'json' || value === 'yaml') return value;
  throw new UsageError(`unsupported output format "${value}"`, 'use -o json or -o yaml');
}

/** Renders a record as JSON (indented, newline-terminated) or YAML (its library loaded on use: a start without -o yaml does not pay for it). */
export async function formatRecord(record: unknown, format: OutputFormat): Promise<string> {
  if (format === 'json') return JSON.stringify(record, null, 2) + '\n';
  const { stringify } = await import('yaml');
  return stringify(record);
}
