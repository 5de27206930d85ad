import { describe, expect, it } from 'vitest';
import { InvalidRequestError } from '../errors.js';
import { CliError } from './connect.js';
import { acksArgument, compressionArgument, keySeparatorArgument, lingerMsArgument, oneLine, parseRecordLine, partitionArgument, produceLines, readLines, summaryLine, type InputLine } from './produce.js';

async function collect(chunks: (string | Buffer)[], lineBytesMax = 1024): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of readLines(chunks, lineBytesMax)) lines.push(`${line.lineNumber}:${line.bytes.toString()}`);
  return lines;
}

function line(text: string, lineNumber = 1): InputLine {
  return { lineNumber, bytes: Buffer.from(text) };
}

describe('readLines', () => {
  it('splits on "\\n" across chunk boundaries, drops "\\r" before it, and keeps a last line without "\\n"', async () => {
    expect(await collect(['al', 'pha\nbe', 'ta\r\n\ngam', 'ma'])).toEqual(['1:alpha', '2:beta', '3:', '4:gamma']);
  });

  it('reads nothing from empty input and no extra line after a final "\\n"', async () => {
    expect(await collect([])).toEqual([]);
    expect(await collect(['one\n'])).toEqual(['1:one']);
  });

  it('keeps multi-byte UTF-8 split across chunks whole', async () => {
    const bytes = Buffer.from('clé:café\n');
    expect(await collect([bytes.subarray(0, 3), bytes.subarray(3, 8), bytes.subarray(8)])).toEqual(['1:clé:café']);
  });

  it('refuses a line longer than the bound with its line number', async () => {
    await expect(collect(['ok\n', 'x'.repeat(6), 'x'.repeat(6)], 10)).rejects.toThrow('line 2 is longer than 10 bytes');
    await expect(collect(['x'.repeat(11) + '\n'], 10)).rejects.toBeInstanceOf(CliError);
    expect(await collect(['x'.repeat(10) + '\n'], 10)).toEqual([`1:${'x'.repeat(10)}`]);
  });
});

describe('parseRecordLine', () => {
  it('without a separator the whole line is the value and there is no key', () => {
    const record = parseRecordLine(line('a:b'), undefined);
    expect(record.key).toBeNull();
    expect(record.value.toString()).toBe('a:b');
  });

  it('splits at the first separator only; key and value may be empty', () => {
    const split = (text: string, separator: string): [string | undefined, string] => {
      const record = parseRecordLine(line(text), separator);
      return [record.key?.toString(), record.value.toString()];
    };
    expect(split('user-1:{"a":1}', ':')).toEqual(['user-1', '{"a":1}']);
    expect(split('k:v:w', ':')).toEqual(['k', 'v:w']);
    expect(split(':v', ':')).toEqual(['', 'v']);
    expect(split('k:', ':')).toEqual(['k', '']);
    expect(split('k::=v', '::=')).toEqual(['k', 'v']);
    expect(split('clé→café', '→')).toEqual(['clé', 'café']);
  });

  it('a line without the separator is an error naming the line and the expected form', () => {
    expect(() => parseRecordLine(line('no separator here', 7), ':')).toThrow('error: line 7 has no key separator ":": "no separator here"; write each line as KEY:VALUE');
    expect(() => parseRecordLine(line('', 2), '\t')).toThrow('line 2 has no key separator "\\t"');
  });
});

describe('produceLines', () => {
  async function* numbered(count: number, onRead: (lineNumber: number) => void): AsyncGenerator<InputLine> {
    for (let lineNumber = 1; lineNumber <= count; lineNumber++) {
      onRead(lineNumber);
      yield line(`k${lineNumber}:value-${lineNumber}`, lineNumber);
    }
  }

  it('never has more than recordsOutstandingMax records unanswered, and reads no further ahead', async () => {
    let outstanding = 0;
    let outstandingMax = 0;
    let readAhead = 0;
    let answered = 0;
    const sent: string[] = [];
    const stats = await produceLines({
      lines: numbered(100, () => (readAhead = Math.max(readAhead, outstanding))),
      keySeparator: ':',
      send: async (record) => {
        sent.push(`${record.key?.toString()}=${record.value.toString()}`);
        outstanding++;
        outstandingMax = Math.max(outstandingMax, outstanding);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
        outstanding--;
        answered++;
      },
      recordsOutstandingMax: 8,
      outstandingBytesMax: 1 << 20,
    });
    expect(outstandingMax).toBe(8);
    expect(readAhead).toBeLessThan(8);
    expect(answered).toBe(100);
    expect(sent[99]).toBe('k100=value-100');
    expect(stats).toMatchObject({ records: 100, failures: 0, firstFailure: undefined, inputError: undefined });
    expect(stats.bytes).toBe(sent.reduce((sum, text) => sum + text.length - 1, 0));
  });

  it('bounds the unanswered bytes too, letting one record through however large', async () => {
    let outstanding = 0;
    let outstandingMax = 0;
    await produceLines({
      lines: numbered(20, () => undefined),
      keySeparator: undefined,
      send: async () => {
        outstandingMax = Math.max(outstandingMax, ++outstanding);
        await new Promise((resolve) => setTimeout(resolve, 1));
        outstanding--;
      },
      recordsOutstandingMax: 100,
      outstandingBytesMax: 1,
    });
    expect(outstandingMax).toBe(1);
  });

  it('counts failures, keeps the first with its line number, and goes on', async () => {
    const stats = await produceLines({
      lines: numbered(10, () => undefined),
      keySeparator: ':',
      send: async (record) => {
        const n = Number(record.key!.toString().slice(1));
        if (n % 4 === 0) throw new Error(`refused ${n}`);
      },
      recordsOutstandingMax: 1,
      outstandingBytesMax: 1 << 20,
    });
    expect(stats.records).toBe(10);
    expect(stats.failures).toBe(2);
    expect(stats.firstFailure?.lineNumber).toBe(4);
    expect(stats.firstFailure?.error.message).toBe('refused 4');
  });

  it('stops reading at a bad line, but still waits for every record sent before it', async () => {
    async function* input(): AsyncGenerator<InputLine> {
      yield line('a:1', 1);
      yield line('b:2', 2);
      yield line('oops', 3);
      throw new Error('line 4 must never be read');
    }
    let answered = 0;
    const stats = await produceLines({
      lines: input(),
      keySeparator: ':',
      send: async () => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        answered++;
      },
      recordsOutstandingMax: 10,
      outstandingBytesMax: 1 << 20,
    });
    expect(answered).toBe(2);
    expect(stats.records).toBe(2);
    expect(stats.inputError?.message).toContain('line 3 has no key separator');
  });
});

describe('flag values', () => {
  it('--acks takes all (or -1), 1 and 0, and names them otherwise', () => {
    expect(acksArgument('all')).toBe('all');
    expect(acksArgument('-1')).toBe('all');
    expect(acksArgument('1')).toBe(1);
    expect(acksArgument('0')).toBe(0);
    for (const bad of ['2', 'ALL', 'leader', '']) expect(() => acksArgument(bad)).toThrow('use all (or -1), 1 or 0');
  });

  it('--compression takes none, gzip and lz4; snappy and zstd are named as unsupported', () => {
    expect(['none', 'gzip', 'lz4'].map(compressionArgument)).toEqual(['none', 'gzip', 'lz4']);
    expect(() => compressionArgument('zstd')).toThrow('raftbus does not support zstd; use none, gzip or lz4');
    expect(() => compressionArgument('brotli')).toThrow('use none, gzip or lz4');
  });

  it('--partition, --linger-ms and --key-separator refuse what cannot be meant', () => {
    expect(partitionArgument('0')).toBe(0);
    expect(partitionArgument('12')).toBe(12);
    for (const bad of ['-1', '1.5', 'one', '', '99999999999999999999']) expect(() => partitionArgument(bad)).toThrow('a partition is a number from 0');
    expect(lingerMsArgument('0')).toBe(0);
    expect(() => lingerMsArgument('-5')).toThrow('from 0 to 60000');
    expect(() => lingerMsArgument('60001')).toThrow('from 0 to 60000');
    expect(keySeparatorArgument('::')).toBe('::');
    expect(() => keySeparatorArgument('')).toThrow('cannot be empty');
  });
});

describe('output', () => {
  it('the summary line gives records, bytes, seconds, rate and failures', () => {
    expect(summaryLine({ records: 3000, bytes: 123456, failures: 2 }, 1500)).toBe('Produced 3000 records (123456 bytes) in 1.50 s, 2000 records/s; 2 failed');
    expect(summaryLine({ records: 0, bytes: 0, failures: 0 }, 0)).toBe('Produced 0 records (0 bytes) in 0.00 s, 0 records/s; 0 failed');
  });

  it('an error becomes one line, an invalid request its problems', () => {
    expect(oneLine(new Error('first\n  second'))).toBe('first; second');
    expect(oneLine(new InvalidRequestError([{ field: 'a', message: 'bad' }, { field: 'b', message: 'worse' }]))).toBe('a: bad; b: worse');
  });
});
