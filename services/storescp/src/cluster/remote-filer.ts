import type { InstanceInfo } from '@dicomflow/dicom';
import type { InstanceFiler } from '../dimse/instance-filing.js';
import type { InstanceOrigin } from '../spool/grouper.js';
import {
  CHANNEL,
  decodeError,
  encodeOrigin,
  type FromWorker,
  type WireError,
  type WireOrigin,
} from './protocol.js';

/** Sends a message to the primary; `done` hears whether it went out. */
export type SendToPrimary = (message: FromWorker, done: (err: Error | null) => void) => void;

/** The primary cannot be reached (it is gone or going): nothing can be filed. */
export class PrimaryGoneError extends Error {
  override readonly name = 'PrimaryGoneError';
}

interface Pending {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * A receiver worker's grouper: each admission and association end is a request to the primary, which
 * files it in the service's one grouper and answers. An admission resolves only once the primary filed
 * the instance, so a C-STORE is acknowledged exactly when it would be in a single process, and the
 * primary's refusals come back with their own types (the same DICOM statuses are answered).
 */
export class RemoteFiler implements InstanceFiler {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Encoded once per association (its origin object is the same for all its instances). */
  private readonly origins = new WeakMap<InstanceOrigin, WireOrigin>();
  /** Associations that filed instances and whose end was not yet told. */
  private readonly associations = new Set<string>();
  private idleWaiters: (() => void)[] = [];
  private gone: PrimaryGoneError | undefined;

  constructor(private readonly send: SendToPrimary) {}

  admit(origin: InstanceOrigin, info: InstanceInfo, incomingPath: string): Promise<void> {
    let wire = this.origins.get(origin);
    if (!wire) {
      wire = encodeOrigin(origin);
      this.origins.set(origin, wire);
    }
    const wireOrigin = wire;
    this.associations.add(origin.associationId);
    return this.request((id) => ({
      channel: CHANNEL,
      kind: 'admit',
      id,
      origin: wireOrigin,
      info,
      path: incomingPath,
    }));
  }

  endAssociation(associationId: string): Promise<void> {
    this.associations.delete(associationId);
    return this.request((id) => ({ channel: CHANNEL, kind: 'end-association', id, associationId }));
  }

  /** The primary answered request `id`. */
  answered(id: number, error: WireError | undefined): void {
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    if (error) waiter.reject(decodeError(error));
    else waiter.resolve();
    this.wakeIfIdle();
  }

  /** The channel to the primary closed: every request waiting fails, and so does any later one. */
  disconnected(): void {
    this.gone = new PrimaryGoneError('the service process is gone');
    for (const waiter of this.pending.values()) waiter.reject(this.gone);
    this.pending.clear();
    this.associations.clear();
    this.wakeIfIdle();
  }

  /**
   * Resolves once no request waits for its answer and every association that filed instances has told
   * its end (or after `timeoutMs`): what the worker received is then in the primary's hands.
   */
  async idle(timeoutMs: number): Promise<void> {
    if (this.isIdle()) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
  }

  private request(message: (id: number) => FromWorker): Promise<void> {
    if (this.gone) return Promise.reject(this.gone);
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send(message(id), (err) => {
        if (!err) return;
        this.pending.delete(id);
        reject(new PrimaryGoneError(`the service process cannot be reached: ${err.message}`));
        this.wakeIfIdle();
      });
    });
  }

  private isIdle(): boolean {
    return this.pending.size === 0 && this.associations.size === 0;
  }

  private wakeIfIdle(): void {
    if (this.isIdle()) for (const wake of this.idleWaiters.splice(0)) wake();
  }
}
