import { describe, expect, it } from 'vitest';
import {
  MESSAGE_SCHEMAS,
  ROUTING_KEYS,
  isSchemaRoutingKey,
  messageJsonSchemas,
  validateMessage,
  validateReceiptIndex,
  type StudyReceived,
} from './index.js';

const receiptId = '6f1c7d7e-3f7b-4a8e-9d55-2a3f5d0c1b9e';

function validStudyReceived(): StudyReceived {
  return {
    receiptId,
    receivedAt: '2024-05-01T12:00:00.000Z',
    grouping: 'association',
    callingAeTitle: 'SCANNER1',
    calledAeTitle: 'STORESCP',
    callingHost: '10.0.0.7',
    bucket: 'dicomflow',
    tarKey: `incoming/${receiptId}.tar`,
    indexKey: `incoming/${receiptId}.index.json`,
    tarSize: 10240,
    tarSubdir: ['StudyInstanceUID', 'SeriesInstanceUID'],
    instanceCount: 2,
    studies: [
      {
        studyInstanceUid: '1.2.840.113619.2.1',
        series: [{ seriesInstanceUid: '1.2.840.113619.2.1.1', modality: 'CT', instanceCount: 2 }],
      },
    ],
  };
}

function errorOf(result: { ok: true } | { ok: false; error: string }): string {
  if (result.ok) throw new Error('expected a validation failure');
  return result.error;
}

describe('validateMessage(study.received)', () => {
  it('accepts a valid body and returns it', () => {
    const body = validStudyReceived();
    const result = validateMessage('study.received', body);
    expect(result).toEqual({ ok: true, value: body });
  });

  it('names a missing field', () => {
    const { receiptId: _dropped, ...body } = validStudyReceived();
    expect(errorOf(validateMessage('study.received', body))).toBe('/receiptId: is required');
  });

  it('names an unknown field', () => {
    const body = { ...validStudyReceived(), patientName: 'DOE^JOHN' };
    expect(errorOf(validateMessage('study.received', body))).toBe('/patientName: is not allowed');
  });

  it('names a nested UID that breaks the pattern', () => {
    const body = validStudyReceived();
    const series = body.studies[0]?.series[0];
    if (!series) throw new Error('fixture has no series');
    series.seriesInstanceUid = '1.2.abc';
    expect(errorOf(validateMessage('study.received', body))).toMatch(
      /^\/studies\/0\/series\/0\/seriesInstanceUid: must match pattern/,
    );
  });

  it('rejects a UID longer than 64 characters', () => {
    const body = validStudyReceived();
    const study = body.studies[0];
    if (!study) throw new Error('fixture has no study');
    study.studyInstanceUid = '1.'.repeat(40);
    expect(errorOf(validateMessage('study.received', body))).toContain('/studies/0/studyInstanceUid');
  });

  it('lists the allowed groupings', () => {
    const body = { ...validStudyReceived(), grouping: 'patient' };
    expect(errorOf(validateMessage('study.received', body))).toBe(
      '/grouping: must be one of "association", "study", "series"',
    );
  });

  it('checks formats: uuid and date-time', () => {
    const body = { ...validStudyReceived(), receiptId: 'not-a-uuid', receivedAt: 'yesterday' };
    const error = errorOf(validateMessage('study.received', body));
    expect(error).toContain('/receiptId: must match format "uuid"');
    expect(error).toContain('/receivedAt: must match format "date-time"');
  });

  it('rejects negative and fractional counts', () => {
    expect(errorOf(validateMessage('study.received', { ...validStudyReceived(), tarSize: -1 }))).toBe(
      '/tarSize: must be >= 0',
    );
    expect(errorOf(validateMessage('study.received', { ...validStudyReceived(), instanceCount: 1.5 }))).toBe(
      '/instanceCount: must be integer',
    );
  });

  it('rejects a body that is not an object', () => {
    expect(errorOf(validateMessage('study.received', 'hello'))).toBe('(body): must be object');
    expect(errorOf(validateMessage('study.received', null))).toBe('(body): must be object');
  });

  it('names at most five errors and counts the rest', () => {
    const error = errorOf(validateMessage('study.received', {}));
    expect(error.split('; ')).toHaveLength(6);
    expect(error).toMatch(/\(8 more\)$/);
  });
});

describe('validateReceiptIndex', () => {
  const instance = {
    member: 'study/series/1.2.3.4.dcm',
    size: 2048,
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2',
    sopInstanceUid: '1.2.3.4',
    studyInstanceUid: '1.2.3',
    seriesInstanceUid: '1.2.3.1',
    transferSyntaxUid: '1.2.840.10008.1.2.1',
    elements: { '00080060': { vr: 'CS', Value: ['CT'] } },
  };

  it('accepts an index', () => {
    const index = { receiptId, instances: [instance] };
    expect(validateReceiptIndex(index)).toEqual({ ok: true, value: index });
  });

  it('names the failing instance field', () => {
    const index = { receiptId, instances: [{ ...instance, size: 'big' }] };
    expect(errorOf(validateReceiptIndex(index))).toBe('/instances/0/size: must be integer');
  });
});

describe('schema registry', () => {
  it('knows only routing keys from ROUTING_KEYS', () => {
    for (const key of Object.keys(MESSAGE_SCHEMAS)) expect(ROUTING_KEYS).toContain(key);
  });

  it('tells schema routing keys apart', () => {
    expect(isSchemaRoutingKey('study.received')).toBe(true);
    expect(isSchemaRoutingKey('toString')).toBe(false);
    expect(isSchemaRoutingKey('no.such.key')).toBe(false);
  });

  it('exports plain JSON Schemas', () => {
    const schemas = messageJsonSchemas();
    const schema = schemas['study.received'] as Record<string, unknown>;
    expect(schema).toMatchObject({
      $id: 'dicomflow:message:study.received',
      type: 'object',
      additionalProperties: false,
    });
    expect(Object.getOwnPropertySymbols(schema)).toEqual([]);
    expect(JSON.parse(JSON.stringify(schemas))).toEqual(schemas);
  });
});
