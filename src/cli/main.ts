#!/usr/bin/env node
// The raftbus command line. It uses only the SDK and the node's public start function.
import { Command, InvalidArgumentError as CommanderInvalidArgument } from 'commander';
import { describeCluster } from './cluster-describe.js';
import { runNode } from './run-node.js';
import { startAll } from './start-all.js';

const defaultClusterFile = 'cluster.example.json';

function nodeIdArgument(value: string): number {
  const id = Number(value);
  if (!Number.isSafeInteger(id) || id <= 0) throw new CommanderInvalidArgument('a node id is a positive integer, as in the cluster file');
  return id;
}

function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new CommanderInvalidArgument('expected a positive integer');
  return n;
}

const program = new Command()
  .name('raftbus')
  .description('A Kafka-style message broker whose metadata quorum and partitions replicate through Raft')
  .showHelpAfterError();

program
  .command('node')
  .description('run one node of the cluster in this process')
  .requiredOption('--cluster <file>', 'the cluster file')
  .requiredOption('--id <n>', 'the id of this node in the cluster file', nodeIdArgument)
  .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
  .option('--pretty', 'readable log lines instead of JSON (default: JSON)')
  .option('--snapshot-every-entries <n>', 'snapshot the metadata log after this many entries', positiveInteger)
  .action(async (options: { cluster: string; id: number; logLevel: string; pretty?: boolean; snapshotEveryEntries?: number }) => {
    process.exitCode = await runNode(options);
  });

program
  .command('start')
  .description('start every node of the cluster file on this machine, each as its own process')
  .option('--cluster <file>', 'the cluster file', defaultClusterFile)
  .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
  .action(async (options: { cluster: string; logLevel: string }) => {
    process.exitCode = await startAll(options);
  });

const cluster = program.command('cluster').description('inspect the cluster');
cluster
  .command('describe')
  .description('the metadata quorum: leader, term, voters and learners, each node\'s log and commit index')
  .option('--cluster <file>', 'the cluster file', defaultClusterFile)
  .option('--json', 'print JSON for scripts')
  .action(async (options: { cluster: string; json?: boolean }) => {
    process.exitCode = await describeCluster(options);
  });

await program.parseAsync(process.argv);
