import { Type, type SchemaOptions, type TUnsafe } from '@sinclair/typebox';

/** A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1). */
export const DicomUid = Type.String({ pattern: '^[0-9.]{1,64}$', maxLength: 64 });

/** An AE title: at most 16 characters (PS3.5 VR AE). */
export const AeTitle = Type.String({ maxLength: 16 });

/** A host name or IP address. */
export const HostName = Type.String({ maxLength: 255 });

/** An S3 bucket name (3-63 characters by S3 rules). */
export const BucketName = Type.String({ minLength: 1, maxLength: 63 });

/** An S3 object key (at most 1024 bytes by S3 rules). */
export const ObjectKey = Type.String({ minLength: 1, maxLength: 1024 });

/**
 * A string restricted to the given values, emitted as a plain JSON Schema `enum` (a union of literals would
 * emit `anyOf`, whose validation errors are much harder to read).
 */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: SchemaOptions = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, type: 'string', enum: [...values] });
}
