import { BlockList, isIP } from 'node:net';
import { classifySopClass, isSupportedTransferSyntax } from '@dicomflow/dicom';

/** A-ASSOCIATE-RJ fields (PS3.8 9.3.4). */
export interface Rejection {
  readonly result: RejectResult;
  readonly source: RejectSource;
  readonly reason: number;
  /** Why, for the log (never contains patient data). */
  readonly why: string;
}

export const RejectResult = { Permanent: 1, Transient: 2 } as const;
type RejectResult = (typeof RejectResult)[keyof typeof RejectResult];
export const RejectSource = {
  ServiceUser: 1,
  ServiceProviderAcse: 2,
  ServiceProviderPresentation: 3,
} as const;
type RejectSource = (typeof RejectSource)[keyof typeof RejectSource];
export const UserReason = { NoReasonGiven: 1, CallingAeNotRecognized: 3, CalledAeNotRecognized: 7 } as const;
export const PresentationReason = { TemporaryCongestion: 1, LocalLimitExceeded: 2 } as const;

/** Presentation context results (PS3.8 9.3.3.2). */
export const ContextResult = {
  Accept: 0,
  UserRejection: 1,
  NoReason: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const;

export interface AssociationPolicyConfig {
  readonly aeTitle: string;
  readonly checkCalledAeTitle: boolean;
  readonly allowedCallingAeTitles: readonly string[];
  readonly deniedCallingAeTitles: readonly string[];
  readonly allowedHosts: readonly string[];
  readonly deniedHosts: readonly string[];
  readonly acceptUnknownSopClasses: boolean;
  readonly maxAssociations: number;
}

export interface AssociationRequestFacts {
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly remoteAddress: string;
  /** Associations already open, not counting this one. */
  readonly openAssociations: number;
}

export type ContextDecision =
  | { readonly accept: true; readonly transferSyntaxUid: string }
  | { readonly accept: false; readonly result: number };

/** Decides which associations and presentation contexts the receiver accepts. Pure: no I/O. */
export class AssociationPolicy {
  private readonly allowedHosts: BlockList | undefined;
  private readonly deniedHosts: BlockList;
  private readonly allowedAes: ReadonlySet<string>;
  private readonly deniedAes: ReadonlySet<string>;

  constructor(private readonly config: AssociationPolicyConfig) {
    this.allowedHosts = config.allowedHosts.length > 0 ? toBlockList(config.allowedHosts) : undefined;
    this.deniedHosts = toBlockList(config.deniedHosts);
    this.allowedAes = new Set(config.allowedCallingAeTitles.map(normaliseAe));
    this.deniedAes = new Set(config.deniedCallingAeTitles.map(normaliseAe));
  }

  /** Associations open at once at most (MAX_ASSOCIATIONS). */
  get maxAssociations(): number {
    return this.config.maxAssociations;
  }

  /** Undefined when the association may go ahead, else the A-ASSOCIATE-RJ to send. */
  reviewAssociation(facts: AssociationRequestFacts): Rejection | undefined {
    const calling = normaliseAe(facts.callingAeTitle);
    if (!this.allowsHost(facts.remoteAddress)) {
      return reject(
        RejectResult.Permanent,
        RejectSource.ServiceUser,
        UserReason.NoReasonGiven,
        'host not allowed',
      );
    }
    if (
      this.config.checkCalledAeTitle &&
      normaliseAe(facts.calledAeTitle) !== normaliseAe(this.config.aeTitle)
    ) {
      return reject(
        RejectResult.Permanent,
        RejectSource.ServiceUser,
        UserReason.CalledAeNotRecognized,
        'called AE title not ours',
      );
    }
    if (this.deniedAes.has(calling) || (this.allowedAes.size > 0 && !this.allowedAes.has(calling))) {
      return reject(
        RejectResult.Permanent,
        RejectSource.ServiceUser,
        UserReason.CallingAeNotRecognized,
        'calling AE title not allowed',
      );
    }
    if (facts.openAssociations >= this.config.maxAssociations) {
      return reject(
        RejectResult.Transient,
        RejectSource.ServiceProviderPresentation,
        PresentationReason.LocalLimitExceeded,
        'too many open associations',
      );
    }
    return undefined;
  }

  /**
   * Accepts a context with the first proposed transfer syntax the receiver can store: the sender lists them
   * in its order of preference, and taking its first choice is what keeps its data as it is.
   */
  reviewContext(abstractSyntaxUid: string, proposedTransferSyntaxes: readonly string[]): ContextDecision {
    const kind = classifySopClass(abstractSyntaxUid);
    switch (kind) {
      case 'storage':
      case 'verification':
        break;
      case 'unknown':
        if (!this.config.acceptUnknownSopClasses)
          return { accept: false, result: ContextResult.AbstractSyntaxNotSupported };
        break;
      case 'other-standard':
        return { accept: false, result: ContextResult.AbstractSyntaxNotSupported };
    }
    const transferSyntaxUid = proposedTransferSyntaxes.find((uid) => isSupportedTransferSyntax(uid));
    return transferSyntaxUid === undefined
      ? { accept: false, result: ContextResult.TransferSyntaxesNotSupported }
      : { accept: true, transferSyntaxUid };
  }

  /** True when `address` may send: not in DENIED_HOSTS and, when ALLOWED_HOSTS is set, in it. */
  allowsHost(address: string): boolean {
    const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const family = isIP(plain) === 6 ? 'ipv6' : 'ipv4';
    if (this.deniedHosts.check(plain, family)) return false;
    return this.allowedHosts === undefined || this.allowedHosts.check(plain, family);
  }
}

function reject(result: RejectResult, source: RejectSource, reason: number, why: string): Rejection {
  return { result, source, reason, why };
}

function normaliseAe(ae: string): string {
  return ae.trim();
}

/** Builds a BlockList from addresses and CIDR ranges ("10.0.0.0/8", "::1"); throws on a malformed entry. */
export function toBlockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address = '', prefix] = entry.trim().split('/');
    const family = isIP(address);
    if (family === 0) throw new Error(`not an IP address or CIDR range: ${entry}`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return list;
}
