import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED } from './index.js';

function capture(level?: string): {
  lines: () => Record<string, unknown>[];
  raw: () => string;
  logger: ReturnType<typeof createLogger>;
} {
  const chunks: string[] = [];
  const logger = createLogger({
    service: 'test-service',
    ...(level === undefined ? {} : { level }),
    destination: { write: (chunk: string) => chunks.push(chunk) },
  });
  return {
    logger,
    raw: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes JSON lines with service, level name, ISO time and message', () => {
    const out = capture();
    out.logger.info({ receiptId: 'r-1' }, 'receipt stored');
    const [line] = out.lines();
    expect(line).toMatchObject({
      service: 'test-service',
      level: 'info',
      msg: 'receipt stored',
      receiptId: 'r-1',
    });
    expect(new Date(line?.time as string).toISOString()).toBe(line?.time);
  });

  it('respects the level', () => {
    const out = capture('warn');
    out.logger.info('hidden');
    out.logger.warn('shown');
    expect(out.lines().map((l) => l.msg)).toEqual(['shown']);
  });

  it('redacts patient name, id and birth date in common shapes and keeps other fields', () => {
    const out = capture();
    out.logger.info(
      {
        PatientName: 'Doe^Jane',
        patientId: 'PID-TOP',
        study: { PatientID: 'PID-ONE', patientBirthDate: '19700101', StudyInstanceUID: '1.2.3' },
        receipt: { index: { PatientName: 'Roe^Rick', Modality: 'CT' } },
        '00100020': { vr: 'LO', Value: ['PID-TAG-TOP'] },
        elements: {
          '00100010': { vr: 'PN', Value: [{ Alphabetic: 'Tag^Name' }] },
          '00080060': { vr: 'CS', Value: ['MR'] },
        },
        instance: { elements: { '00100030': { vr: 'DA', Value: ['19991231'] } } },
        instances: [{ PatientName: 'Array^Item' }],
      },
      'study received',
    );
    const raw = out.raw();
    for (const phi of [
      'Doe^Jane',
      'PID-TOP',
      'PID-ONE',
      '19700101',
      'Roe^Rick',
      'PID-TAG-TOP',
      'Tag^Name',
      '19991231',
      'Array^Item',
    ]) {
      expect(raw).not.toContain(phi);
    }
    const [line] = out.lines();
    expect(line).toMatchObject({
      PatientName: REDACTED,
      patientId: REDACTED,
      study: { PatientID: REDACTED, patientBirthDate: REDACTED, StudyInstanceUID: '1.2.3' },
      receipt: { index: { PatientName: REDACTED, Modality: 'CT' } },
      '00100020': REDACTED,
      elements: { '00100010': REDACTED, '00080060': { vr: 'CS', Value: ['MR'] } },
      instance: { elements: { '00100030': REDACTED } },
      msg: 'study received',
    });
    expect(REDACTED).toBe('[redacted]');
  });

  it('does not modify the logged object', () => {
    const out = capture();
    const study = { PatientName: 'Keep^Me' };
    out.logger.info({ study }, 'logged');
    expect(study.PatientName).toBe('Keep^Me');
    expect(out.raw()).not.toContain('Keep^Me');
  });
});
