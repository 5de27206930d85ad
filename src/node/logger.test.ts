import { describe, expect, it } from 'vitest';
import { createLogger, formatPrettyLine, groupLogger } from './logger.js';

/** capture returns a destination that keeps every line written to it. */
function capture(): { lines: string[]; write(line: string): void } {
  const lines: string[] = [];
  return { lines, write: (line: string) => void lines.push(line) };
}

function parsed(lines: readonly string[]): Record<string, unknown>[] {
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('createLogger', () => {
  it('writes JSON lines that carry node, and no pid or hostname', () => {
    const destination = capture();
    const logger = createLogger({ nodeId: 3, destination });
    logger.info({ term: 7 }, 'became leader');
    const [line] = parsed(destination.lines);
    expect(destination.lines[0]?.endsWith('\n')).toBe(true);
    expect(line).toMatchObject({ node: 3, level: 30, msg: 'became leader', term: 7 });
    expect(line).not.toHaveProperty('pid');
    expect(line).not.toHaveProperty('hostname');
  });

  it('adds group on a group logger, and keeps node', () => {
    const destination = capture();
    const logger = createLogger({ nodeId: 2, destination });
    groupLogger(logger, 0).warn('election timeout');
    groupLogger(logger, 17).child({ topic: 'orders' }).info('appended');
    logger.info('no group');
    expect(parsed(destination.lines)).toEqual([
      expect.objectContaining({ node: 2, group: 0, msg: 'election timeout' }),
      expect.objectContaining({ node: 2, group: 17, topic: 'orders', msg: 'appended' }),
      expect.not.objectContaining({ group: expect.anything() }),
    ]);
  });

  it('drops lines below the level', () => {
    const destination = capture();
    const logger = createLogger({ nodeId: 1, level: 'warn', destination });
    logger.info('hidden');
    logger.error('shown');
    expect(parsed(destination.lines).map((line) => line['msg'])).toEqual(['shown']);
  });

  it('defaults to info', () => {
    const destination = capture();
    createLogger({ nodeId: 1, destination }).debug('hidden');
    expect(destination.lines).toEqual([]);
  });

  it('writes one readable line per entry when pretty', () => {
    const destination = capture();
    const logger = createLogger({ nodeId: 1, pretty: true, destination });
    groupLogger(logger, 4).info({ term: 2 }, 'became leader');
    expect(destination.lines).toHaveLength(1);
    expect(destination.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d\d\d INFO  node=1 group=4 became leader term=2\n$/);
  });
});

describe('formatPrettyLine', () => {
  it('prints an error stack under the line', () => {
    const line = JSON.stringify({ level: 50, time: 0, node: 1, msg: 'failed', err: { message: 'boom', stack: 'Error: boom\n    at x' } });
    expect(formatPrettyLine(line)).toBe('00:00:00.000 ERROR node=1 failed\nError: boom\n    at x\n');
  });
});
