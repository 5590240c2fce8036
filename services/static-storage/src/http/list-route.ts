import type { FastifyInstance } from 'fastify';
import { storageFailure } from './http-error.js';
import { itemBody, type RouteContext } from './route-context.js';
import { ErrorBody, StaticListBody } from './schemas.js';

/** GET /static: every stored tar with its size, sha256, last update and source. */
export function registerListRoute(app: FastifyInstance, context: RouteContext): void {
  app.get<{ Reply: StaticListBody }>(
    '/static',
    { schema: { response: { 200: StaticListBody, '5xx': ErrorBody } } },
    async () => ({ items: (await listItems(context)).map(itemBody) }),
  );
}

/** The stored items; S3 failures become a 503. */
export async function listItems(context: RouteContext) {
  try {
    return await context.store.list();
  } catch (err) {
    throw storageFailure(err, '');
  }
}
