import type { FastifyInstance, FastifyReply } from 'fastify';
import { parseStaticName, tarFileName } from '../static-name.js';
import type { StaticItem } from '../store/static-store.js';
import { notFound, storageFailure } from './http-error.js';
import { listItems } from './list-route.js';
import { itemBody, type RouteContext } from './route-context.js';
import { NameParams, type StaticListBody } from './schemas.js';

/**
 * GET /static/<name>: the tar, streamed from S3, with its size and `X-Sha256` / `ETag`; HEAD /static/<name>:
 * the same headers only. `GET /static/` lists, like GET /static.
 */
export function registerDownloadRoute(app: FastifyInstance, context: RouteContext): void {
  app.get<{ Params: NameParams }>(
    '/static/*',
    { exposeHeadRoute: false, schema: { params: NameParams } },
    async (request, reply) => {
      if (request.params['*'] === '') {
        const body: StaticListBody = { items: (await listItems(context)).map(itemBody) };
        return reply.send(body);
      }
      const name = parseStaticName(request.params['*']);
      const item = await find(context, name);
      const body = await context.store.open(name).catch((err: unknown) => {
        throw storageFailure(err, name);
      });
      context.metrics.downloads.inc();
      return withItemHeaders(reply, item).send(body);
    },
  );

  app.head<{ Params: NameParams }>(
    '/static/*',
    { schema: { params: NameParams } },
    async (request, reply) => {
      const name = parseStaticName(request.params['*']);
      return withItemHeaders(reply, await find(context, name)).send();
    },
  );
}

async function find(context: RouteContext, name: string): Promise<StaticItem> {
  const item = await context.store.get(name).catch((err: unknown) => {
    throw storageFailure(err, name);
  });
  if (!item) throw notFound(name);
  return item;
}

function withItemHeaders(reply: FastifyReply, item: StaticItem): FastifyReply {
  void reply
    .header('content-type', 'application/x-tar')
    .header('content-length', item.size)
    .header('content-disposition', `attachment; filename="${tarFileName(item.name)}"`)
    .header('last-modified', item.updated.toUTCString());
  if (item.sha256 !== null) void reply.header('x-sha256', item.sha256).header('etag', `"${item.sha256}"`);
  return reply;
}
