import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The check of an `Authorization: Bearer <token>` header against a configured token, or undefined when no
 * token is configured (the protected routes are then off). Digests of equal length are compared, so the
 * time taken does not depend on what was sent.
 */
export function bearerTokenCheck(
  token: string,
): ((authorization: string | undefined) => boolean) | undefined {
  if (token === '') return undefined;
  const expected = digest(token);
  return (authorization) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), expected);
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
