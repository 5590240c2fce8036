import type { FastifyInstance } from 'fastify';
import { parseStaticName } from '../static-name.js';
import { notFound, storageFailure } from './http-error.js';
import type { RouteContext } from './route-context.js';
import { ErrorBody, NameParams } from './schemas.js';
import { refuseFolderName } from './upload-route.js';
import { requireUploadToken } from './upload-token.js';

/** DELETE /static/<name> (token-protected): removes the tar; 204, or 404 for an unknown name. */
export function registerDeleteRoute(app: FastifyInstance, context: RouteContext): void {
  app.delete<{ Params: NameParams }>(
    '/static/*',
    {
      onRequest: requireUploadToken(context.uploadToken),
      schema: { params: NameParams, response: { '4xx': ErrorBody, '5xx': ErrorBody } },
    },
    async (request, reply) => {
      const name = parseStaticName(request.params['*']);
      await refuseFolderName(context, name);
      const fail = (err: unknown) => {
        throw storageFailure(err, name);
      };
      if (!(await context.store.get(name).catch(fail))) throw notFound(name);
      await context.store.remove(name).catch(fail);
      context.metrics.removed.inc({ source: 'http' });
      context.logger.info({ name }, 'static content deleted');
      return reply.code(204).send();
    },
  );
}
