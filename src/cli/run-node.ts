// `raftbus node`: one node in this process until SIGINT or SIGTERM, then a graceful stop.
import { loadCluster } from './connect.js';
import { createLogger, logLevels, type LogLevel } from '../node/logger.js';
import { RaftbusNode } from '../node/node.js';

/** runNode returns the process exit code: 0 after a graceful stop, 1 on failure, 2 on bad input. */
export async function runNode(options: { cluster: string; id: number; logLevel: string; pretty?: boolean; snapshotEveryEntries?: number; sessionTimeoutMs?: number; advertisedClientPort?: number; offsetsRetentionMinutes?: number; offsetsCompactBytes?: number }): Promise<number> {
  if (!(logLevels as readonly string[]).includes(options.logLevel)) {
    console.error(`--log-level: '${options.logLevel}' is not one of ${logLevels.join(', ')}`);
    return 2;
  }
  const loaded = await loadCluster(options.cluster);
  const logger = createLogger({ nodeId: options.id, level: options.logLevel as LogLevel, pretty: options.pretty === true });
  let node: RaftbusNode;
  let failed: Error | undefined;
  let wake: () => void = () => undefined;
  try {
    node = await RaftbusNode.start({
      cluster: loaded.cluster,
      nodeId: options.id,
      logger,
      ...(options.snapshotEveryEntries !== undefined ? { snapshotEveryEntries: options.snapshotEveryEntries } : {}),
      ...(options.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: options.sessionTimeoutMs } : {}),
      ...(options.advertisedClientPort !== undefined ? { advertisedClientPort: options.advertisedClientPort } : {}),
      ...(options.offsetsRetentionMinutes !== undefined ? { offsetsRetentionMs: options.offsetsRetentionMinutes * 60_000 } : {}),
      ...(options.offsetsCompactBytes !== undefined ? { offsetsCompactBytes: options.offsetsCompactBytes } : {}),
      onFailure: (error) => {
        failed = error;
        wake();
      },
    });
  } catch (error) {
    logger.fatal({ err: error }, 'node could not start');
    console.error(`raftbus node ${options.id}: ${(error as Error).message}`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    wake = resolve;
    if (failed !== undefined) resolve(); // it failed before start() returned
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  logger.info(failed === undefined ? 'stopping on signal' : 'stopping after a failure');
  await node.close();
  return failed === undefined ? 0 : 1;
}
