import { HttpError } from '@dicomflow/runtime';

/**
 * What a route throws when S3 failed: an object that is not there is a 404 (GoneError semantics), anything
 * else means S3 is unreachable or refused us, a 503 the client may retry.
 */
export function storageFailure(err: unknown, name: string): Error {
  if ((err as { kind?: unknown } | null)?.kind === 'gone') return notFound(name);
  const detail = err instanceof Error ? err.message : String(err);
  return new HttpError(503, `S3 is unavailable, try again later (${detail})`, { cause: err });
}

/** The 404 of an unknown name. */
export function notFound(name: string): Error {
  return new HttpError(404, `no static content named "${name}"`);
}
