import { describe, expect, it } from 'vitest';
import {
  AssociationPolicy,
  ContextResult,
  RejectResult,
  RejectSource,
  toBlockList,
  type AssociationPolicyConfig,
} from './association-policy.js';

const base: AssociationPolicyConfig = {
  aeTitle: 'STORESCP',
  checkCalledAeTitle: true,
  allowedCallingAeTitles: [],
  deniedCallingAeTitles: [],
  allowedHosts: [],
  deniedHosts: [],
  acceptUnknownSopClasses: true,
  maxAssociations: 2,
};
const facts = {
  callingAeTitle: 'MODALITY',
  calledAeTitle: 'STORESCP',
  remoteAddress: '127.0.0.1',
  openAssociations: 0,
};
const CT = '1.2.840.10008.5.1.4.1.1.2';
const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';

describe('AssociationPolicy.reviewAssociation', () => {
  it('accepts a request that meets every rule', () => {
    expect(new AssociationPolicy(base).reviewAssociation(facts)).toBeUndefined();
  });

  it('rejects a wrong called AE title permanently with reason 7, unless the check is off', () => {
    expect(new AssociationPolicy(base).reviewAssociation({ ...facts, calledAeTitle: 'OTHER' })).toMatchObject(
      {
        result: RejectResult.Permanent,
        source: RejectSource.ServiceUser,
        reason: 7,
      },
    );
    expect(
      new AssociationPolicy({ ...base, checkCalledAeTitle: false }).reviewAssociation({
        ...facts,
        calledAeTitle: 'OTHER',
      }),
    ).toBeUndefined();
  });

  it('applies calling AE allow and deny lists with reason 3', () => {
    const allowOnly = new AssociationPolicy({ ...base, allowedCallingAeTitles: ['CT1'] });
    expect(allowOnly.reviewAssociation(facts)).toMatchObject({ reason: 3 });
    expect(allowOnly.reviewAssociation({ ...facts, callingAeTitle: 'CT1' })).toBeUndefined();
    const deny = new AssociationPolicy({ ...base, deniedCallingAeTitles: ['MODALITY'] });
    expect(deny.reviewAssociation(facts)).toMatchObject({ result: RejectResult.Permanent, reason: 3 });
  });

  it('applies host allow and deny lists, with CIDR ranges and IPv4-mapped IPv6 addresses', () => {
    const allow = new AssociationPolicy({ ...base, allowedHosts: ['10.0.0.0/8'] });
    expect(allow.reviewAssociation(facts)).toMatchObject({ reason: 1 });
    expect(allow.reviewAssociation({ ...facts, remoteAddress: '::ffff:10.1.2.3' })).toBeUndefined();
    const deny = new AssociationPolicy({ ...base, deniedHosts: ['127.0.0.1'] });
    expect(deny.reviewAssociation(facts)).toMatchObject({ result: RejectResult.Permanent });
  });

  it('rejects transiently beyond the association limit', () => {
    expect(new AssociationPolicy(base).reviewAssociation({ ...facts, openAssociations: 2 })).toMatchObject({
      result: RejectResult.Transient,
      source: RejectSource.ServiceProviderPresentation,
      reason: 2,
    });
  });

  it('refuses malformed host entries', () => {
    expect(() => toBlockList(['not-an-ip'])).toThrow(/not-an-ip/);
  });
});

describe('AssociationPolicy.reviewContext', () => {
  const policy = new AssociationPolicy(base);
  it("takes the sender's first supported transfer syntax", () => {
    expect(policy.reviewContext(CT, ['1.2.3.private', IMPLICIT, EXPLICIT])).toEqual({
      accept: true,
      transferSyntaxUid: IMPLICIT,
    });
  });
  it('accepts verification and every compressed syntax as is', () => {
    expect(policy.reviewContext('1.2.840.10008.1.1', [IMPLICIT])).toMatchObject({ accept: true });
    for (const ts of [
      '1.2.840.10008.1.2.4.50',
      '1.2.840.10008.1.2.4.70',
      '1.2.840.10008.1.2.4.80',
      '1.2.840.10008.1.2.4.90',
      '1.2.840.10008.1.2.5',
      '1.2.840.10008.1.2.1.99',
      '1.2.840.10008.1.2.2',
    ]) {
      expect(policy.reviewContext(CT, [ts])).toEqual({ accept: true, transferSyntaxUid: ts });
    }
  });
  it('accepts every transfer syntax dcmtk storescp accepts with +xa (3.6.7)', () => {
    // Among them the MPEG-4 2D, 3D and stereo and the HEVC Main 10 video syntaxes it once refused.
    const dcmtk = [
      ...['1.2', '1.2.1', '1.2.1.99', '1.2.2', '1.2.5'],
      ...['50', '51', '70', '80', '81', '90', '91'].map((n) => `1.2.4.${n}`),
      ...['100', '101', '102', '103', '104', '105', '106', '107', '108'].map((n) => `1.2.4.${n}`),
    ].map((suffix) => `1.2.840.10008.${suffix}`);
    for (const ts of dcmtk) {
      expect(policy.reviewContext(CT, [ts]), ts).toEqual({ accept: true, transferSyntaxUid: ts });
    }
  });
  it('refuses transfer syntaxes it cannot walk', () => {
    expect(policy.reviewContext(CT, ['1.2.3.4'])).toEqual({
      accept: false,
      result: ContextResult.TransferSyntaxesNotSupported,
    });
  });
  it('accepts or refuses unknown SOP classes by configuration', () => {
    expect(policy.reviewContext('1.2.826.0.1.3680043.9.9999.1', [EXPLICIT])).toMatchObject({ accept: true });
    const strict = new AssociationPolicy({ ...base, acceptUnknownSopClasses: false });
    expect(strict.reviewContext('1.2.826.0.1.3680043.9.9999.1', [EXPLICIT])).toEqual({
      accept: false,
      result: ContextResult.AbstractSyntaxNotSupported,
    });
  });
  it('refuses standard services other than storage and verification', () => {
    expect(policy.reviewContext('1.2.840.10008.5.1.4.1.2.2.1', [EXPLICIT])).toEqual({
      accept: false,
      result: ContextResult.AbstractSyntaxNotSupported,
    });
  });
});
