import dimse from 'dcmjs-dimse';
import { describe, expect, it } from 'vitest';
import {
  commandEssentials,
  decodeCommandSet,
  encodeCommandSet,
  MAX_COMMAND_SET_LENGTH,
} from './command-set.js';

const { Dataset } = dimse;
const { CStoreRequest, CEchoRequest } = dimse.requests;
const { CStoreResponse, CEchoResponse } = dimse.responses;

const CT = '1.2.840.10008.5.1.4.1.1.2';

function storeRequest(sopInstanceUid: string, messageId: number): InstanceType<typeof CStoreRequest> {
  const request = new CStoreRequest(new Dataset({ SOPClassUID: CT, SOPInstanceUID: sopInstanceUid }));
  request.setMessageId(messageId);
  return request;
}

/** What the library itself encodes for a message's command set. */
function libraryBytes(message: { getCommandDataset(): InstanceType<typeof Dataset> }): Buffer {
  return message.getCommandDataset().getDenaturalizedCommandDataset();
}

describe('encodeCommandSet', () => {
  const responses = {
    'C-STORE-RSP success, odd UID': (() => {
      const r = CStoreResponse.fromRequest(storeRequest('1.2.3.4.5', 7));
      r.setStatus(0);
      return r;
    })(),
    'C-STORE-RSP success, even UID, large message id': (() => {
      const r = CStoreResponse.fromRequest(storeRequest('1.2.3.4.56', 65535));
      r.setStatus(0);
      return r;
    })(),
    'C-STORE-RSP with an odd-length error comment': (() => {
      const r = CStoreResponse.fromRequest(storeRequest('1.2.3.4.5', 1));
      r.setStatus(0xa900);
      r.setErrorComment('dataset UIDs differ');
      return r;
    })(),
    'C-STORE-RSP with an even-length error comment': (() => {
      const r = CStoreResponse.fromRequest(storeRequest('1.2.3.4.5', 2));
      r.setStatus(0xc000);
      r.setErrorComment('spool unavailable!');
      return r;
    })(),
    'C-ECHO-RSP': (() => {
      const request = new CEchoRequest();
      request.setMessageId(3);
      const r = CEchoResponse.fromRequest(request);
      r.setStatus(0);
      return r;
    })(),
    'C-STORE-RQ': storeRequest('1.2.826.0.1.3680043.9.1', 42),
  };

  for (const [name, message] of Object.entries(responses)) {
    it(`writes what the library writes: ${name}`, () => {
      const elements = message.getCommandDataset().getElements();
      expect(encodeCommandSet(elements)).toEqual(libraryBytes(message));
    });
  }

  it('leaves command sets it does not fully understand to the library', () => {
    const base = { CommandField: 0x8001, Status: 0 };
    expect(encodeCommandSet({ ...base, OffendingElement: [0x00100010] })).toBeUndefined();
    expect(encodeCommandSet({ ...base, SomethingElse: 'x' })).toBeUndefined();
    expect(encodeCommandSet({ ...base, ErrorComment: 'Müller' })).toBeUndefined();
    expect(encodeCommandSet({ ...base, ErrorComment: '' })).toBeUndefined();
    expect(encodeCommandSet({ ...base, Status: 0x10000 })).toBeUndefined();
    expect(encodeCommandSet({ ...base, Status: null })).toBeUndefined();
    // unset elements are left out, as dcmjs does
    expect(encodeCommandSet({ ...base, ErrorComment: undefined })).toEqual(encodeCommandSet(base));
  });
});

function element(tagElement: number, value: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(0x0000, 0);
  header.writeUInt16LE(tagElement, 2);
  header.writeUInt32LE(value.length, 4);
  return Buffer.concat([header, value]);
}
const us = (v: number): Buffer => Buffer.from([v & 0xff, v >> 8]);
const text = (v: string, pad: string): Buffer => Buffer.from(v.length % 2 ? v + pad : v, 'latin1');
const withGroupLength = (body: Buffer): Buffer => {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length);
  return Buffer.concat([element(0x0000, length), body]);
};

describe('decodeCommandSet', () => {
  const commands: Record<string, Buffer> = {
    'a C-STORE-RQ as dcmtk sends it': withGroupLength(
      Buffer.concat([
        element(0x0002, text(CT, '\0')),
        element(0x0100, us(0x0001)),
        element(0x0110, us(17)),
        element(0x0700, us(0)),
        element(0x0800, us(0x0000)),
        element(0x1000, text('1.2.826.0.1.3680043.9.1', '\0')),
      ]),
    ),
    'a C-STORE-RQ on behalf of a C-MOVE': withGroupLength(
      Buffer.concat([
        element(0x0002, text(CT, '\0')),
        element(0x0100, us(0x0001)),
        element(0x0110, us(65535)),
        element(0x0700, us(2)),
        element(0x0800, us(0x0102)),
        element(0x1000, text('1.2.3.44', '\0')),
        element(0x1030, text('MOVE SCU', ' ')),
        element(0x1031, us(3)),
      ]),
    ),
    'every element the table knows': Buffer.concat([
      element(0x0002, text('1.2.3', '\0')),
      element(0x0003, text('1.2.34', '\0')),
      element(0x0100, us(0x8001)),
      element(0x0110, us(1)),
      element(0x0120, us(2)),
      element(0x0600, text('DEST', ' ')),
      element(0x0700, us(1)),
      element(0x0800, us(0x0101)),
      element(0x0900, us(0xa700)),
      element(0x0902, text('out of resources', ' ')),
      element(0x0903, us(4)),
      element(0x1000, text('1.2.3.4', '\0')),
      element(0x1001, text('1.2.3.45', '\0')),
      element(0x1002, us(5)),
      element(0x1008, us(6)),
      element(0x1020, us(7)),
      element(0x1021, us(8)),
      element(0x1022, us(9)),
      element(0x1023, us(10)),
      element(0x1030, text('ORIG', ' ')),
      element(0x1031, us(11)),
    ]),
  };

  for (const [name, bytes] of Object.entries(commands)) {
    it(`reads what the library reads: ${name}`, () => {
      expect(decodeCommandSet(bytes)).toStrictEqual(new Dataset(bytes).getElements());
    });
  }

  it('reads back what encodeCommandSet writes', () => {
    const elements = {
      CommandField: 0x8001,
      MessageIDBeingRespondedTo: 9,
      Status: 0,
      AffectedSOPInstanceUID: '1.2.3',
    };
    const bytes = encodeCommandSet(elements);
    expect(bytes && decodeCommandSet(bytes)).toStrictEqual({
      _vrMap: {},
      CommandGroupLength: (bytes?.length ?? 0) - 12,
      ...elements,
    });
  });

  it('refuses what it cannot read', () => {
    const cases = [
      element(0x1000, Buffer.from('1.2.3x')), // not a UID
      element(0x0902, Buffer.from('a\\b ')), // two values
      element(0x0902, Buffer.from('a\tb ')), // a control character
      element(0x0110, Buffer.alloc(0)), // empty
      element(0x0110, Buffer.from([1, 0, 2, 0])), // two US values
      element(0x0000, Buffer.alloc(2)), // short group length
      Buffer.concat([element(0x0110, us(1)), element(0x0110, us(2))]), // repeated
      Buffer.concat([element(0x0110, us(1)), Buffer.from([0, 0, 0x10])]), // cut short
      Buffer.concat([element(0x0110, us(1)), Buffer.from([0x10, 0, 0, 0x40, 2, 0, 0, 0, 0x41, 0x41])]), // group 0010
      element(0x0902, Buffer.alloc(MAX_COMMAND_SET_LENGTH, 0x41)), // longer than a command set may be
    ];
    for (const bytes of cases) expect(decodeCommandSet(bytes)).toBeUndefined();
  });

  it('trims padding dcmjs would trim and skips retired command elements', () => {
    const bytes = Buffer.concat([
      element(0x0001, Buffer.from([0, 0, 0, 0])), // (0000,0001) Command Length to End, retired
      element(0x0100, us(0x0030)),
      element(0x1000, Buffer.from('1.2.3 ')), // space-padded UID
      element(0x1030, Buffer.from(' AE ')),
    ]);
    expect(decodeCommandSet(bytes)).toStrictEqual({
      _vrMap: {},
      CommandField: 0x30,
      AffectedSOPInstanceUID: '1.2.3',
      MoveOriginatorApplicationEntityTitle: 'AE',
    });
  });

  it('reads a value of 60k inner and trailing spaces in one pass (dcmjs trims such values quadratically)', () => {
    const value = Buffer.from(`a${' '.repeat(30_000)}a${' '.repeat(30_001)}`, 'latin1');
    expect(decodeCommandSet(element(0x0902, value))?.ErrorComment).toBe(`a${' '.repeat(30_000)}a`);
  });
});

describe('commandEssentials', () => {
  it('finds what a failure response needs in a command set decodeCommandSet refuses', () => {
    const bytes = withGroupLength(
      Buffer.concat([
        element(0x0002, text('1.2.840.10008.1.1', '\0')),
        element(0x0100, us(0x0030)),
        element(0x0110, us(7)),
        element(0x0800, us(0x0101)),
        Buffer.from([0x10, 0, 0, 0x40, 4, 0, 0, 0]),
        Buffer.from('a  a'),
      ]),
    );
    expect(decodeCommandSet(bytes)).toBeUndefined();
    expect(commandEssentials(bytes)).toEqual({ commandField: 0x30, messageId: 7, datasetFollows: false });
  });

  it('gives nothing when an element overruns the bytes or an essential is missing', () => {
    const field = element(0x0100, us(1));
    const id = element(0x0110, us(1));
    const type = element(0x0800, us(0));
    expect(commandEssentials(Buffer.concat([field, id, type]))).toEqual({
      commandField: 1,
      messageId: 1,
      datasetFollows: true,
    });
    expect(commandEssentials(Buffer.concat([field, id]))).toBeUndefined();
    expect(
      commandEssentials(Buffer.concat([field, id, type, Buffer.from([0, 0, 0, 9, 0xff, 0, 0, 0])])),
    ).toBeUndefined();
  });
});
