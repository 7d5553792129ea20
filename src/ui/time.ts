/** Time stamps the plugin writes into names (backup files, restore stamps, pod names). */

/** Formats a UTC time as YYYYMMDDTHHMMSSZ. */
export function compactUtc(time: Date): string {
  return time.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
}
