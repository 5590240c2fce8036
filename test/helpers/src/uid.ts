import { randomUUID } from 'node:crypto';

/** A fresh DICOM UID under the UUID-derived root: `2.25.<decimal value of a random UUID>`. */
export function newUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`).toString()}`;
}
