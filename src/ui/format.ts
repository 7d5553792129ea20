import { stringify } from 'yaml';
import { UsageError } from '../errors.js';

/** Machine-readable output formats accepted by `-o`. */
export type OutputFormat = 'json' | 'yaml';

/** Validates the value of `-o`; undefined means the human format. */
export function parseOutputFormat(value: string | undefined): OutputFormat | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'json' || value === 'yaml') return value;
  throw new UsageError(`unsupported output format "${value}"`, 'use -o json or -o yaml');
}

/** Renders a record as JSON (indented, newline-terminated) or YAML. */
export function formatRecord(record: unknown, format: OutputFormat): string {
  return format === 'json' ? JSON.stringify(record, null, 2) + '\n' : stringify(record);
}
