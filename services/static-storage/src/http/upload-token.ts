import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerTokenCheck, HttpError } from '@dicomflow/runtime';

/**
 * The `onRequest` hook of the changing routes (upload, delete): `Authorization: Bearer <token>` must
 * carry STATIC_UPLOAD_TOKEN. Without a configured token, changes over HTTP are disabled (403). It runs
 * before the body is read, so a refused upload is never written anywhere.
 */
export function requireUploadToken(token: string) {
  const matches = bearerTokenCheck(token);
  return (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (matches === undefined) {
      return Promise.reject(
        new HttpError(403, 'uploads are disabled: set STATIC_UPLOAD_TOKEN to allow changes over HTTP'),
      );
    }
    if (!matches(request.headers.authorization)) {
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
