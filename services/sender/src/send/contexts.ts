import { TransferSyntax, type ProposedContext } from '@dicomflow/dicom';
import type { OutputInstance } from './output-feed.js';

/** Presentation context ids are odd numbers 1-255: at most 128 contexts per association. */
export const MAX_CONTEXTS = 128;

const LITTLE_ENDIAN: readonly string[] = [
  TransferSyntax.ExplicitVRLittleEndian,
  TransferSyntax.ImplicitVRLittleEndian,
];

/** True for the two uncompressed little endian syntaxes, between which the sender can convert. */
export function isLittleEndian(syntax: string): boolean {
  return LITTLE_ENDIAN.includes(syntax);
}

/**
 * The transfer syntaxes an instance can go out in, best first: its own (sent byte for byte), then, for
 * uncompressed little endian data, the other little endian syntax (converted).
 */
export function sendableSyntaxes(syntax: string): readonly string[] {
  return isLittleEndian(syntax) ? [syntax, ...LITTLE_ENDIAN.filter((s) => s !== syntax)] : [syntax];
}

/**
 * One presentation context per SOP class and transfer syntax of the instances to send, each offering just
 * that syntax, so the acceptor cannot pick a syntax the instance is not in. Little endian data also gets a
 * context in the other little endian syntax as a fall-back (every SCP must accept implicit VR little
 * endian). The first instance's contexts come first, so an association always covers the instance it
 * opens for; contexts past {@link MAX_CONTEXTS} are left out (their instances go in a later association).
 */
export function planContexts(instances: readonly OutputInstance[]): ProposedContext[] {
  const pairs = new Set<string>();
  const contexts: ProposedContext[] = [];
  const propose = (abstractSyntax: string, syntax: string): void => {
    const key = `${abstractSyntax}|${syntax}`;
    if (pairs.has(key) || contexts.length >= MAX_CONTEXTS) return;
    pairs.add(key);
    contexts.push({ id: contexts.length * 2 + 1, abstractSyntax, transferSyntaxes: [syntax] });
  };
  const [head] = instances;
  if (head)
    for (const syntax of sendableSyntaxes(head.file.transferSyntaxUid))
      propose(head.file.sopClassUid, syntax);
  for (const { file } of instances) propose(file.sopClassUid, file.transferSyntaxUid);
  for (const { file } of instances)
    for (const syntax of sendableSyntaxes(file.transferSyntaxUid)) propose(file.sopClassUid, syntax);
  return contexts;
}
