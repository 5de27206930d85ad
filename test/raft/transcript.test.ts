// Runs every transcript in testdata/ and compares each command's output with the expected block.
// Regenerate the expected blocks with RAFTBUS_REWRITE=1 — then review every changed line against
// the Raft rules before keeping it: a transcript is only as right as its reviewer.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseTranscript, runTranscript, TranscriptInterpreter } from './transcript.js';

const directory = join(fileURLToPath(new URL('.', import.meta.url)), 'testdata');
const rewrite = process.env.RAFTBUS_REWRITE === '1';
const scripts = readdirSync(directory).filter((name) => name.endsWith('.txt')).sort();

describe('raft transcripts', () => {
  it('has scripts to run', () => {
    expect(scripts.length).toBeGreaterThanOrEqual(6);
  });

  for (const name of scripts) {
    it(name, () => {
      const path = join(directory, name);
      const text = readFileSync(path, 'utf8');
      const { actual, cases, outputs } = runTranscript(text);
      if (rewrite) {
        writeFileSync(path, actual);
        return;
      }
      for (const [index, testCase] of cases.entries()) {
        const got = outputs[index]!.join('\n');
        expect(got, `${name}:${testCase.line}: ${testCase.command}`).toBe(testCase.expected.join('\n'));
      }
      expect(actual).toBe(text);
    });
  }
});

describe('transcript interpreter', () => {
  it('parses commands, expected blocks and comments', () => {
    const cases = parseTranscript('# a comment\ncluster voters=1\n----\nok\n\nstatus 1\n----\nterm=1 vote=0\n');
    expect(cases.map((testCase) => [testCase.comments, testCase.command, testCase.expected, testCase.line])).toEqual([
      [['# a comment'], 'cluster voters=1', ['ok'], 2],
      [[], 'status 1', ['term=1 vote=0'], 6],
    ]);
  });

  it('rejects a command without its ---- line and an unknown command', () => {
    expect(() => parseTranscript('cluster voters=1\nok\n')).toThrow(/expected ----/);
    expect(() => new TranscriptInterpreter().run('frobnicate 1')).toThrow(/unknown command/);
  });

  it('reports a mismatch: a wrong expected block does not survive a run', () => {
    const script = 'cluster voters=1,2,3\n----\nok\n\ncampaign 1\n----\n1->2 requestVote term=9 pre lastIndex=1 lastTerm=1\n';
    const { actual } = runTranscript(script);
    expect(actual).not.toBe(script);
    expect(actual).toContain('1->2 requestVote term=2 pre lastIndex=1 lastTerm=1');
  });
});
