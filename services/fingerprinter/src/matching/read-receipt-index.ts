import { FlowMatcher, type LoadedFlow, type MatchResult } from '@dicomflow/flows';
import { readReceiptIndexLines, ReceiptIndexFormatError, type StudyReceived } from '@dicomflow/messages';
import { errorKind, GoneError, PermanentError, TransientError } from '@dicomflow/runtime';
import type { Storage } from '@dicomflow/storage';

/** One flow's decision on a receipt. */
export interface FlowMatch {
  readonly loaded: LoadedFlow;
  readonly result: MatchResult;
}

/** What matching a receipt's index found. */
export interface ReceiptMatches {
  /** Instances listed in the index. */
  readonly instances: number;
  readonly matches: readonly FlowMatch[];
}

/**
 * Streams the receipt's index and matches every instance against every flow as it is read, so that only
 * member names and counts are held, whatever the size of the study. Failures carry their handling: the
 * index (or its bucket) is gone -> GoneError (nothing to match; the message is dropped); not a receipt
 * index, or another receipt's -> PermanentError (dead-lettered); S3 unreachable or the download cut ->
 * TransientError (retried).
 */
export async function matchReceipt(
  storage: Pick<Storage, 'getStream'>,
  study: Pick<StudyReceived, 'receiptId' | 'bucket' | 'indexKey'>,
  flows: readonly LoadedFlow[],
): Promise<ReceiptMatches> {
  const where = `${study.bucket}/${study.indexKey}`;
  const matchers = flows.map((loaded) => ({ loaded, matcher: new FlowMatcher(loaded.flow) }));
  let instances = 0;
  try {
    const source = await storage.getStream(study.bucket, study.indexKey);
    for await (const record of readReceiptIndexLines(source)) {
      if ('header' in record) {
        if (record.header.receiptId !== study.receiptId) {
          source.destroy();
          throw new PermanentError(
            `receipt index ${where} belongs to receipt ${record.header.receiptId}, not ${study.receiptId}`,
          );
        }
        continue;
      }
      instances += 1;
      const { member, elements } = record.instance;
      for (const { matcher } of matchers) matcher.add({ member, elements });
    }
  } catch (err) {
    throw classified(err, where);
  }
  return {
    instances,
    matches: matchers.map(({ loaded, matcher }) => ({ loaded, result: matcher.result() })),
  };
}

function classified(err: unknown, where: string): unknown {
  if (err instanceof PermanentError) return err;
  if (err instanceof ReceiptIndexFormatError) {
    return new PermanentError(`receipt index ${where} is invalid: ${err.message}`, { cause: err });
  }
  const reason = err instanceof Error ? err.message : String(err);
  switch (errorKind(err)) {
    case 'gone':
      return new GoneError(`receipt index ${where} does not exist: ${reason}`, { cause: err });
    case 'permanent':
      return new PermanentError(`cannot read receipt index ${where}: ${reason}`, { cause: err });
    case 'transient':
      return new TransientError(`cannot read receipt index ${where}: ${reason}`, { cause: err });
  }
}
