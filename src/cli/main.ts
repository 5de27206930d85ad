#!/usr/bin/env node
// The raftbus command line. It uses only the SDK and the node's public start function.
import { Command, InvalidArgumentError as CommanderInvalidArgument } from 'commander';
import { describeCluster } from './cluster-describe.js';
import { runNode } from './run-node.js';
import { startAll } from './start-all.js';
import { CliError } from './connect.js';
import { InvalidRequestError, RaftbusError } from '../errors.js';
import * as topics from './topics.js';
import * as consoleProducer from './produce.js';
import * as consoleConsumer from './consume.js';
import * as groups from './groups.js';

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

/** integerFrom returns a parser of an integer from min to max, whose refusal names both. */
function integerFrom(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new CommanderInvalidArgument(`expected an integer from ${min} to ${max}`);
    return n;
  };
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
  .option('--session-timeout-ms <n>', 'as active controller, fence a broker silent for this many ms (default 6000; brokers heartbeat every 500 ms)', positiveInteger)
  .option('--advertised-client-port <port>', 'the client port this broker tells clients to use, when they reach it through a proxy (default: its clientPort)', positiveInteger)
  .option('--offsets-retention-minutes <n>', 'delete a consumer group without members, offsets and all, this long after it emptied or last committed (default 10080: 7 days)', integerFrom(1, 2_147_483_647))
  .option('--offsets-compact-bytes <n>', 'compact a partition of __consumer_offsets once it holds this many bytes of group records (default 4194304)', integerFrom(1024, 1024 ** 3))
  .action(async (options: { cluster: string; id: number; logLevel: string; pretty?: boolean; snapshotEveryEntries?: number; sessionTimeoutMs?: number; advertisedClientPort?: number; offsetsRetentionMinutes?: number; offsetsCompactBytes?: number }) => {
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

const connection = (command: Command): Command =>
  command
    .option('--bootstrap-server <host:port,...>', 'client address(es) of any node(s); default: every node of the cluster file')
    .option('--cluster <file>', 'the cluster file, when no --bootstrap-server is given', defaultClusterFile)
    .option('--json', 'print JSON for scripts');

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

const topicsCommand = program.command('topics').description('create, list, describe, alter and delete topics (as kafka-topics.sh)');
connection(topicsCommand.command('create <topic>').description('create a topic'))
  .option('--partitions <n>', 'number of partitions', positiveInteger, 1)
  .option('--replication-factor <n>', 'replicas of each partition (default: min(3, unfenced brokers))', positiveInteger)
  .option('--config <key=value>', 'a topic config, repeatable (retention.ms, retention.bytes, segment.bytes, max.message.bytes, cleanup.policy, compression.type)', collect, [])
  .action((topic: string, options) => topics.createTopic(topic, options));
connection(topicsCommand.command('list').description('list topic names')).action((options) => topics.listTopics(options));
connection(topicsCommand.command('describe [topics...]').description('partitions, replicas, leaders and configs of topics (all when none are named)')).action(
  async (names: string[], options) => {
    process.exitCode = await topics.describeTopics(names, options);
  },
);
connection(topicsCommand.command('alter <topic>').description('add partitions or change configs'))
  .option('--partitions <n>', 'the new total number of partitions (only grows)', positiveInteger)
  .option('--config <key=value>', 'set a config, repeatable', collect, [])
  .option('--delete-config <key>', 'reset a config to its default, repeatable', collect, [])
  .action((topic: string, options) => topics.alterTopic(topic, options));
connection(topicsCommand.command('delete <topic>').description('delete a topic and its data')).action((topic: string, options) => topics.deleteTopic(topic, options));

const brokersCommand = program.command('brokers').description('the brokers the controller knows');
connection(brokersCommand.command('list').description('brokers: address, rack, fenced or not, replicas and leaders')).action((options) => topics.listBrokers(options));

const groupsCommand = program.command('groups').description('list, describe and delete consumer groups, reset their offsets (as kafka-consumer-groups.sh)');
connection(groupsCommand.command('list').description('every consumer group of the cluster: state, members, coordinator')).action((options) => groups.listGroups(options));
connection(groupsCommand.command('describe <group>').description('per partition: committed offset, log end offset, lag and owner; then the state and members')).action((group: string, options) =>
  groups.describeGroup(group, options),
);
connection(groupsCommand.command('delete <group>').description('delete a group without members, its committed offsets included')).action((group: string, options) => groups.deleteGroup(group, options));
connection(groupsCommand.command('reset-offsets <group>').description('move the committed offsets of a group without members (a dry run unless --execute)'))
  .requiredOption('--topic <topic>', 'the topic whose offsets move')
  .option('--partition <n>', 'only this partition, repeatable (default: every partition of the topic)', groups.partitionsArgument, [])
  .option('--to-earliest', 'to the oldest record still held')
  .option('--to-latest', 'to the end: skip every record there is now')
  .option('--to-offset <n>', 'to this offset (clamped to what the partition holds)', groups.offsetArgument)
  .option('--shift-by <n>', 'by n from the committed offset, negative to read again (clamped)', groups.shiftArgument)
  .option('--to-datetime <time>', 'to the first record at or after an ISO 8601 time, e.g. 2026-11-21T09:30:00Z', groups.datetimeArgument)
  .option('--dry-run', 'print the plan and change nothing (the default)')
  .option('--execute', 'set the offsets')
  .action((group: string, options: groups.ResetOffsetsCommandOptions) => groups.resetOffsets(group, options));

const clientConnection = (command: Command): Command =>
  command
    .option('--bootstrap-server <host:port,...>', 'client address(es) of any node(s); default: every node of the cluster file')
    .option('--cluster <file>', 'the cluster file, when no --bootstrap-server is given', defaultClusterFile)
    .showHelpAfterError(false);

clientConnection(program.command('produce <topic>').description('send each line of stdin as one record (as kafka-console-producer.sh)'))
  .option('--key-separator <sep>', 'read each line as KEY<sep>VALUE (default: the line is the value, without key)', consoleProducer.keySeparatorArgument)
  .option('--partition <n>', 'send every record to this partition (default: by key hash; without key, sticky)', consoleProducer.partitionArgument)
  .option('--acks <acks>', 'all (a majority of replicas on disk), 1 (the leader on disk) or 0 (no answer)', consoleProducer.acksArgument, 'all')
  .option('--compression <codec>', 'none, gzip or lz4', consoleProducer.compressionArgument, 'none')
  .option('--linger-ms <n>', 'how long a batch waits for more records (default 5)', consoleProducer.lingerMsArgument)
  .option('--summary', `print the summary line on stderr even for ${consoleProducer.consoleProducerLimits.summaryRecordsAbove} records or fewer`)
  .action(async (topic: string, options: consoleProducer.ProduceCommandOptions) => {
    process.exitCode = await consoleProducer.produce(topic, options);
  });

clientConnection(program.command('consume <topic>').description('print the records of a topic, one per line (as kafka-console-consumer.sh)'))
  .option('--from-beginning', 'start at the oldest record (default: print only records that arrive from now on)')
  .option('--partition <n>', 'read only this partition (default: every partition)', consoleProducer.partitionArgument)
  .option('--offset <offset>', 'start at this offset of --partition: a number, earliest or latest', consoleConsumer.offsetArgument)
  .option('--max-messages <n>', 'exit after printing this many records', consoleConsumer.positiveIntegerArgument)
  .option('--timeout-ms <n>', 'exit when no record came for this many ms', consoleConsumer.positiveIntegerArgument)
  .option('--print-key', 'print the key before the value')
  .option('--print-offset', 'print the partition and offset before the key and value')
  .option('--key-separator <sep>', 'what goes between the printed fields', consoleProducer.keySeparatorArgument, '\t')
  .option('--json', 'print one JSON object per record: topic, partition, offset, timestamp, key, value, headers')
  .option('--group <group>', 'read as a member of this consumer group: share the partitions with its other members, start from its committed offsets, commit what was printed', groups.groupArgument)
  .action(async (topic: string, options: consoleConsumer.ConsumeCommandOptions) => {
    process.exitCode = await consoleConsumer.consume(topic, options);
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CliError) {
    console.error(error.message);
    process.exitCode = error.exitCode;
  } else if (error instanceof InvalidRequestError) {
    console.error(`error: the request was refused:\n${error.problems.map((problem) => `  ${problem.field}: ${problem.message}`).join('\n')}`);
    process.exitCode = 1;
  } else if (error instanceof RaftbusError) {
    console.error(`error: ${error.message}`);
    process.exitCode = 1;
  } else {
    throw error;
  }
}
