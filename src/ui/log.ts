/** Where log lines go: anything with a write(string) method, normally process.stderr. */
export interface LogSink {
  write(chunk: string): unknown;
}

/** Leveled logger for stderr: info always, debug only at -v N or higher. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(level: number, message: string): void;
}

/** Creates a logger writing to `sink`; `verbosity` is the -v level (0 = quiet). */
export function createLogger(sink: LogSink, verbosity = 0): Logger {
  return {
    info: (message) => void sink.write(message + '\n'),
    warn: (message) => void sink.write(`warning: ${message}\n`),
    debug: (level, message) => {
      if (verbosity >= level) sink.write(`I${level} ${message}\n`);
    },
  };
}
