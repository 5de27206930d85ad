// `raftbus groups …`: what kafka-consumer-groups.sh does, over the SDK's GroupsAdmin: list the
// groups, describe one (per partition: committed offset, log end offset, lag, owner; then its
// state and members), delete one, reset its offsets (a dry run unless --execute, as Kafka).
// Every refusal is one line on stderr that says what to do, and exit code 1.
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from 'commander';
import { GroupsAdmin, type GroupDescription, type GroupListing, type OffsetTarget, type ResetOffsetsPlan, type TopicPartition } from '../client/groups-admin.js';
import { groupLimits } from '../groups/coordinator.js';
import { GroupNotEmptyError, InvalidRequestError, UnknownGroupError, UnknownPartitionError, UnknownTopicError } from '../errors.js';
import { RemoteError } from '../rpc/unary.js';
import { CliError, bootstrapAddresses, type ConnectOptions } from './connect.js';
import { oneLine } from './produce.js';
import { table } from './table.js';

type Output = { json?: boolean };

async function withGroupsAdmin<T>(options: ConnectOptions, run: (admin: GroupsAdmin) => Promise<T>): Promise<T> {
  const admin = new GroupsAdmin({ bootstrap: await bootstrapAddresses(options), retryForMs: 15_000 });
  try {
    return await run(admin);
  } catch (error) {
    throw explain(error);
  } finally {
    admin.close();
  }
}

/** explain turns the refusals a person can act on into one line (a CliError, exit 1); other errors pass. */
export function explain(error: unknown): unknown {
  if (error instanceof UnknownGroupError) return new CliError(`error: group ${error.group} does not exist; list the groups with: raftbus groups list`, 1);
  if (error instanceof GroupNotEmptyError) {
    return new CliError(`error: group ${error.group} has ${error.members} active member${error.members === 1 ? '' : 's'}; stop its consumers first`, 1);
  }
  if (error instanceof UnknownTopicError) return new CliError(`error: topic ${error.topic} does not exist; list the topics with: raftbus topics list`, 1);
  if (error instanceof UnknownPartitionError || error instanceof InvalidRequestError) return new CliError(`error: ${oneLine(error)}`, 1);
  if (error instanceof RemoteError && (error.code === grpc.status.UNAVAILABLE || error.code === grpc.status.DEADLINE_EXCEEDED)) {
    return new CliError(`error: ${oneLine(error)}; is the cluster running? name a node with --bootstrap-server host:port or the cluster file with --cluster`, 1);
  }
  return error;
}

/** printJson prints a value for scripts; absent fields print as null, so every key is always there. */
function printJson(value: unknown): void {
  console.log(JSON.stringify(value, (_, field: unknown) => (field === undefined ? null : field), 2));
}

export async function listGroups(options: ConnectOptions & Output): Promise<void> {
  const groups = await withGroupsAdmin(options, (admin) => admin.listGroups());
  if (options.json) printJson(groups);
  else if (groups.length > 0) console.log(renderGroupList(groups).join('\n'));
}

export function renderGroupList(groups: readonly GroupListing[]): string[] {
  return table([['GROUP', 'STATE', 'MEMBERS', 'COORDINATOR'], ...groups.map((listed) => [listed.group, listed.state, String(listed.members), String(listed.coordinator)])]);
}

export async function describeGroup(group: string, options: ConnectOptions & Output): Promise<void> {
  const description = await withGroupsAdmin(options, (admin) => admin.describeGroup(group));
  if (options.json) printJson(description);
  else console.log(renderGroup(description).join('\n'));
}

const orDash = (value: number | string | undefined): string => (value === undefined || value === '' ? '-' : String(value));

/** renderGroup prints Kafka's describe table (one row per partition), then the group's state and members. */
export function renderGroup(description: GroupDescription): string[] {
  const { group, state, generation, assignor, coordinator, members, partitions } = description;
  const lines =
    partitions.length === 0
      ? [`Group ${group} has no committed offsets and no assigned partitions.`]
      : table([
          ['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'CLIENT-ID'],
          ...partitions.map((p) => [group, p.topic, String(p.partition), orDash(p.committedOffset), orDash(p.logEndOffset), orDash(p.lag), orDash(p.memberId), orDash(p.clientId)]),
        ]);
  const about = `Group ${group} is ${state}, generation ${generation}${assignor === '' ? '' : `, assignor ${assignor}`}, coordinator node ${coordinator}`;
  if (members.length === 0) return [...lines, '', `${about}, no active members.`];
  const memberRows = members.map((member) => [member.memberId, orDash(member.clientId), orDash(member.instanceId), renderAssignment(member.assignment)]);
  return [...lines, '', `${about}, ${members.length} member${members.length === 1 ? '' : 's'}:`, ...table([['CONSUMER-ID', 'CLIENT-ID', 'INSTANCE-ID', 'ASSIGNMENT'], ...memberRows])];
}

/** renderAssignment writes partitions as Kafka does: topic(0,1,2), topics apart by ", ". */
function renderAssignment(assignment: readonly TopicPartition[]): string {
  if (assignment.length === 0) return '-';
  const byTopic = new Map<string, number[]>();
  for (const tp of assignment) byTopic.set(tp.topic, [...(byTopic.get(tp.topic) ?? []), tp.partition]);
  return [...byTopic].map(([topic, partitions]) => `${topic}(${partitions.sort((a, b) => a - b).join(',')})`).join(', ');
}

export async function deleteGroup(group: string, options: ConnectOptions): Promise<void> {
  await withGroupsAdmin(options, (admin) => admin.deleteGroup(group));
  console.log(`Deleted group ${group}.`);
}

export interface ResetOffsetsCommandOptions extends ConnectOptions, Output {
  readonly topic: string;
  readonly partition: number[];
  readonly toEarliest?: boolean;
  readonly toLatest?: boolean;
  readonly toOffset?: number;
  readonly shiftBy?: number;
  readonly toDatetime?: number;
  readonly dryRun?: boolean;
  readonly execute?: boolean;
}

/** offsetTarget reads the one --to-… or --shift-by option given; throws CliError for none or several. */
export function offsetTarget(options: ResetOffsetsCommandOptions): OffsetTarget {
  const given: OffsetTarget[] = [];
  if (options.toEarliest) given.push({ kind: 'earliest' });
  if (options.toLatest) given.push({ kind: 'latest' });
  if (options.toOffset !== undefined) given.push({ kind: 'offset', offset: options.toOffset });
  if (options.shiftBy !== undefined) given.push({ kind: 'shiftBy', shiftBy: options.shiftBy });
  if (options.toDatetime !== undefined) given.push({ kind: 'timestamp', timestampMs: options.toDatetime });
  if (given.length !== 1) throw new CliError('error: give one of --to-earliest, --to-latest, --to-offset N, --shift-by N or --to-datetime TIME', 1);
  return given[0]!;
}

export async function resetOffsets(group: string, options: ResetOffsetsCommandOptions): Promise<void> {
  const to = offsetTarget(options);
  if (options.execute && options.dryRun) throw new CliError('error: give --dry-run or --execute, not both', 1);
  const partitions = options.partition.length > 0 ? options.partition : undefined;
  const plan = await withGroupsAdmin(options, (admin) => admin.resetOffsets(group, { topic: options.topic, ...(partitions !== undefined ? { partitions } : {}), to, dryRun: options.execute !== true }));
  if (options.json) printJson(plan);
  else console.log(renderResetPlan(plan).join('\n'));
}

export function renderResetPlan(plan: ResetOffsetsPlan): string[] {
  const rows = plan.offsets.map((planned) => [plan.group, planned.topic, String(planned.partition), orDash(planned.currentOffset), String(planned.newOffset)]);
  const lines = table([['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'NEW-OFFSET'], ...rows]);
  const done = plan.applied ? `Group ${plan.group} now starts from the new offsets.` : 'Dry run: nothing was changed. Add --execute to set these offsets.';
  return [...lines, '', done];
}

export function partitionsArgument(value: string, previous: number[]): number[] {
  const partition = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(partition)) throw new InvalidArgumentError('use a partition number from 0');
  return [...previous, partition];
}

export function offsetArgument(value: string): number {
  const offset = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(offset)) throw new InvalidArgumentError('use an offset from 0');
  return offset;
}

export function shiftArgument(value: string): number {
  const shift = /^[+-]?\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(shift)) throw new InvalidArgumentError('use a whole number, negative to go back (e.g. --shift-by -100)');
  return shift;
}

/** datetimeArgument reads an ISO 8601 time as milliseconds since 1970 (a time without zone is local time; a date alone is UTC midnight). */
export function datetimeArgument(value: string): number {
  const ms = /^\d{4}-\d\d-\d\d/.test(value) ? Date.parse(value) : NaN;
  if (!Number.isSafeInteger(ms) || ms < 0) throw new InvalidArgumentError('use an ISO 8601 time, e.g. 2026-11-21T09:30:00Z or 2026-11-21T09:30:00.000+01:00');
  return ms;
}

/** groupArgument checks a group id as the coordinator will. */
export function groupArgument(value: string): string {
  if (value.length === 0 || value.length > groupLimits.groupIdLengthMax) throw new InvalidArgumentError(`a group id has 1 to ${groupLimits.groupIdLengthMax} characters`);
  return value;
}
