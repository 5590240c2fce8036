import { describe, expect, it } from 'vitest';
import {
  ATTEMPT_HEADER,
  attemptOf,
  copyProperties,
  decodeDelivery,
  outcomeOfFailure,
  routingKeyOf,
} from './delivery.js';
import { GoneError, PermanentError, TransientError } from './errors.js';
import { studyReceived } from './testing/rabbit-test-kit.js';

type FakeDelivery = Parameters<typeof decodeDelivery>[0];

function delivery(
  content: string,
  properties: Record<string, unknown>,
  routingKey = 'study.received',
): FakeDelivery {
  return {
    content: Buffer.from(content),
    fields: { deliveryTag: 1, redelivered: false, exchange: 'dicomflow', routingKey },
    properties,
  } as unknown as FakeDelivery;
}

const policy = { maxAttempts: 3, retryDelaysMs: [100, 1000] };

describe('outcomeOfFailure', () => {
  it('retries transient and unknown errors with the delay of their attempt, the last delay repeating', () => {
    expect(outcomeOfFailure(new TransientError('s3 down'), 1, { ...policy, maxAttempts: 9 })).toEqual({
      action: 'retry',
      error: 'TransientError: s3 down',
      delayMs: 100,
    });
    expect(outcomeOfFailure(new Error('boom'), 2, { ...policy, maxAttempts: 9 })).toMatchObject({
      delayMs: 1000,
    });
    expect(outcomeOfFailure('odd', 5, { ...policy, maxAttempts: 9 })).toEqual({
      action: 'retry',
      error: 'odd',
      delayMs: 1000,
    });
  });

  it('retries an outage without counting it as an attempt, its delays counted by the outage retries', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    // Attempts used up, yet the database being down is not the message's failure: it is kept.
    expect(outcomeOfFailure(refused, 3, policy)).toEqual({
      action: 'retry',
      error: 'Error: connect ECONNREFUSED 127.0.0.1:5432',
      delayMs: 100,
      outage: true,
    });
    expect(outcomeOfFailure(refused, 3, policy, 7)).toMatchObject({ action: 'retry', delayMs: 1000 });
    // In a cause chain, and PostgreSQL's own words for a server going away.
    const wrapped = new TransientError('cannot write the run', { cause: refused });
    expect(outcomeOfFailure(wrapped, 9, policy)).toMatchObject({ action: 'retry', outage: true });
    const shutdown = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
    });
    expect(outcomeOfFailure(shutdown, 9, policy)).toMatchObject({ action: 'retry', outage: true });
    expect(outcomeOfFailure(new Error('Connection terminated unexpectedly'), 9, policy)).toMatchObject({
      outage: true,
    });
    // The Docker engine's socket missing while it restarts is an outage; another missing file is not.
    const noSocket = Object.assign(new Error('connect ENOENT /var/run/docker.sock'), {
      code: 'ENOENT',
      syscall: 'connect',
    });
    expect(outcomeOfFailure(noSocket, 9, policy)).toMatchObject({ outage: true });
    const noFile = Object.assign(new Error('ENOENT: open /x'), { code: 'ENOENT', syscall: 'open' });
    expect(outcomeOfFailure(noFile, 3, policy)).toMatchObject({ action: 'dead', reason: 'max-attempts' });
    // A permanent error stays permanent, whatever caused it.
    expect(outcomeOfFailure(new PermanentError('bad', { cause: refused }), 1, policy)).toMatchObject({
      action: 'dead',
    });
  });

  it('dead-letters once the attempts are used up', () => {
    expect(outcomeOfFailure(new TransientError('s3 down'), 3, policy)).toEqual({
      action: 'dead',
      reason: 'max-attempts',
      error: 'failed 3 times; last: TransientError: s3 down',
    });
  });

  it('dead-letters permanent errors at once and acks gone ones, by their kind', () => {
    expect(outcomeOfFailure(new PermanentError('bad flow'), 1, policy)).toEqual({
      action: 'dead',
      reason: 'permanent',
      error: 'PermanentError: bad flow',
    });
    expect(outcomeOfFailure({ kind: 'gone', message: 'x' }, 1, policy)).toEqual({
      action: 'ack',
      gone: '[object Object]',
    });
    expect(outcomeOfFailure(new GoneError('run deleted'), 1, policy)).toEqual({
      action: 'ack',
      gone: 'GoneError: run deleted',
    });
  });

  it('bounds the error text', () => {
    const outcome = outcomeOfFailure(new PermanentError('x'.repeat(10_000)), 1, policy);
    expect(outcome.action === 'dead' && outcome.error.length).toBe(2000);
  });
});

describe('decodeDelivery', () => {
  it('returns the validated body under its type', () => {
    const body = studyReceived();
    const decoded = decodeDelivery(delivery(JSON.stringify(body), { type: 'study.received' }), [
      'study.received',
    ]);
    expect(decoded).toEqual({ ok: true, routingKey: 'study.received', body });
  });

  it('takes the routing key from the type property, not the queue name a retry arrived under', () => {
    const message = delivery('{}', { type: 'study.received' }, 'my-queue');
    expect(routingKeyOf(message)).toBe('study.received');
    expect(routingKeyOf(delivery('{}', {}, 'study.received'))).toBe('study.received');
  });

  it('dead-letters bodies that are not JSON, fail the schema or have a foreign routing key', () => {
    expect(decodeDelivery(delivery('{', { type: 'study.received' }), ['study.received'])).toMatchObject({
      ok: false,
      outcome: { action: 'dead', reason: 'unparseable' },
    });
    expect(decodeDelivery(delivery('{"a":1}', { type: 'study.received' }), ['study.received'])).toMatchObject(
      {
        ok: false,
        outcome: { reason: 'invalid', error: expect.stringContaining('/receiptId: is required') as unknown },
      },
    );
    expect(decodeDelivery(delivery('{}', { type: 'job.cpu' }), ['study.received'])).toMatchObject({
      ok: false,
      routingKey: 'job.cpu',
      outcome: { reason: 'invalid', error: 'routing key "job.cpu" is not one this queue consumes' },
    });
  });
});

describe('attemptOf', () => {
  it('reads the attempt header, defaulting to 1', () => {
    expect(attemptOf(undefined)).toBe(1);
    expect(attemptOf({ [ATTEMPT_HEADER]: 4 })).toBe(4);
    expect(attemptOf({ [ATTEMPT_HEADER]: '4' })).toBe(1);
    expect(attemptOf({ [ATTEMPT_HEADER]: 0 })).toBe(1);
  });
});

describe('copyProperties', () => {
  it('keeps identity, priority and headers, drops RabbitMQ dead-letter history, adds the new headers', () => {
    const props = copyProperties(
      {
        properties: {
          messageId: 'm',
          correlationId: 'c',
          type: 'study.received',
          priority: 4,
          timestamp: 1700000000,
          contentType: 'application/json',
          contentEncoding: undefined,
          userId: 'guest',
          expiration: '100',
          headers: {
            'schema-version': '1',
            'x-death': [{ count: 1 }],
            'x-first-death-queue': 'q.retry.100ms',
            'x-last-death-reason': 'expired',
          },
        },
      } as unknown as Parameters<typeof copyProperties>[0],
      { [ATTEMPT_HEADER]: 2 },
    );
    expect(props).toEqual({
      messageId: 'm',
      correlationId: 'c',
      type: 'study.received',
      priority: 4,
      timestamp: 1700000000,
      contentType: 'application/json',
      persistent: true,
      headers: { 'schema-version': '1', [ATTEMPT_HEADER]: 2 },
    });
  });
});
