import dimse from 'dcmjs-dimse';
import { describe, expect, it } from 'vitest';
import { encodeCommandSet } from './command-set-encoder.js';

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
