import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { extractTraceContext, HttpError, inSpan } from '@dicomflow/runtime';
import { isValidBoundary, parseMediaType } from './media-type.js';
import { storeInstances, type StowAnswer, type StowContext } from './stow-request.js';

/** A Study Instance UID in a path: digits and dots (PS3.5 9.1), at most 64 characters. */
const UID = /^[0-9.]{1,64}$/;

const EXPECTED_TYPE = 'multipart/related; type="application/dicom"';

/**
 * The Studies Store transaction (PS3.18 10.5): `POST /studies` and `POST /studies/{StudyInstanceUID}` with
 * a `multipart/related; type="application/dicom"` body, one Part-10 instance per part. Every request needs
 * `Authorization: Bearer <STOW_TOKEN>` (`tokenMatches` says whether a header carries it; 401 otherwise, 403
 * from a host ALLOWED_HOSTS/DENIED_HOSTS exclude), checked before any byte of the body is read. The answer
 * is a Store Instances response (`application/dicom+json`): 200 all stored, 202 some, 409 none. `track` is
 * told of each request's work, so that closing can wait for it.
 */
export function registerStowRoutes(
  app: FastifyInstance,
  ctx: StowContext,
  tokenMatches: (authorization: string | undefined) => boolean,
  track: (work: Promise<StowAnswer>) => Promise<StowAnswer>,
): void {
  void app.register((scope, _options, done) => {
    // Every body reaches the handler as the raw stream: fastify parses and buffers nothing.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, parsed) => {
      parsed(null);
    });
    scope.addHook('onRequest', (request, reply) => {
      if (!ctx.policy.allowsHost(request.ip)) return Promise.reject(new HttpError(403, 'host not allowed'));
      if (!tokenMatches(request.headers.authorization)) {
        void reply.header('www-authenticate', 'Bearer realm="storescp"');
        return Promise.reject(
          new HttpError(401, 'missing or wrong token: send "Authorization: Bearer <STOW_TOKEN>"'),
        );
      }
      return Promise.resolve();
    });
    // A body left unread is not read to its end to keep the connection: it may be gigabytes.
    scope.addHook('onError', (request, reply) => {
      if (!request.raw.complete) void reply.header('connection', 'close');
      return Promise.resolve();
    });
    scope.addHook('onResponse', (_request, reply) => {
      ctx.metrics.stowRequests.inc({ code: String(reply.statusCode) });
      return Promise.resolve();
    });
    const handler = async (
      request: FastifyRequest<{ Params: { study?: string } }>,
      reply: FastifyReply,
    ): Promise<FastifyReply> => {
      const boundary = boundaryOf(request.headers['content-type'], request.headers['content-encoding']);
      const declared = Number(request.headers['content-length']);
      if (declared > ctx.maxRequestBytes) {
        throw new HttpError(
          413,
          `the request body is larger than STOW_MAX_REQUEST_BYTES (${ctx.maxRequestBytes})`,
        );
      }
      const { study } = request.params;
      if (study !== undefined && !UID.test(study))
        throw new HttpError(400, 'the path does not end with a Study Instance UID');
      // The receipt's trace starts here (or goes on from the client's traceparent, when it sends one).
      const answer = await track(
        inSpan(
          'stow request',
          {
            kind: 'server',
            parent: extractTraceContext(request.headers),
            attributes: { 'http.request.method': 'POST', 'client.address': request.ip },
          },
          async (span) => {
            const stowAnswer = await storeInstances(ctx, {
              body: request.raw,
              boundary,
              expectedStudy: study,
              remoteAddress: request.ip,
            });
            span.setAttribute('http.response.status_code', stowAnswer.status);
            return stowAnswer;
          },
        ),
      );
      return reply.code(answer.status).type('application/dicom+json').send(JSON.stringify(answer.body));
    };
    scope.post('/studies', handler);
    scope.post('/studies/:study', handler);
    done();
  });
}

/** The boundary of a STOW-RS body, from its Content-Type; 415 or 400 when the body cannot be one. */
function boundaryOf(contentType: string | undefined, contentEncoding: string | undefined): string {
  if (contentEncoding !== undefined && contentEncoding.trim().toLowerCase() !== 'identity')
    throw new HttpError(415, `Content-Encoding ${contentEncoding} is not accepted: send the body as it is`);
  const media = contentType === undefined ? undefined : parseMediaType(contentType);
  if (media?.type !== 'multipart/related') throw new HttpError(415, `the body must be ${EXPECTED_TYPE}`);
  const type = media.parameters.get('type');
  if (type !== undefined && parseMediaType(type)?.type !== 'application/dicom')
    throw new HttpError(415, `only Part-10 instances are accepted: the body must be ${EXPECTED_TYPE}`);
  const boundary = media.parameters.get('boundary');
  if (boundary === undefined || !isValidBoundary(boundary))
    throw new HttpError(400, 'the Content-Type has no valid boundary parameter (RFC 2046)');
  return boundary;
}
