import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from './http-error.js';

/**
 * The `onRequest` hook of the changing routes (upload, delete): `Authorization: Bearer <token>` must
 * carry STATIC_UPLOAD_TOKEN. Without a configured token, changes over HTTP are disabled (403). It runs
 * before the body is read, so a refused upload is never written anywhere.
 */
export function requireUploadToken(token: string) {
  const expected = token === '' ? undefined : digest(token);
  return (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (expected === undefined) {
      return Promise.reject(
        new HttpError(403, 'uploads are disabled: set STATIC_UPLOAD_TOKEN to allow changes over HTTP'),
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    // Digests of equal length, so the comparison takes the same time whatever was sent.
    if (!match?.[1] || !timingSafeEqual(digest(match[1]), expected)) {
      void reply.header('www-authenticate', 'Bearer realm="static-storage"');
      return Promise.reject(
        new HttpError(
          401,
          'missing or wrong upload token: send "Authorization: Bearer <STATIC_UPLOAD_TOKEN>"',
        ),
      );
    }
    return Promise.resolve();
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
