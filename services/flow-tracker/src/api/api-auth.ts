import type { FastifyInstance } from 'fastify';
import { bearerTokenCheck } from '@dicomflow/runtime';

/** What stays open without a token: probes and Prometheus. */
const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

const CHALLENGE = 'Bearer realm="dicomflow-tracker"';

/**
 * Requires `Authorization: Bearer <TRACKER_API_TOKEN>` on every route but {@link OPEN_PATHS}: the API
 * reveals runs and studies and starts resends and reruns. Without a configured token the API is off (401
 * saying how to turn it on), never open. Checked before the body is read; the token is never logged.
 */
export function requireApiToken(app: FastifyInstance, token: string): void {
  const check = bearerTokenCheck(token);
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?', 1)[0] ?? '';
    if (OPEN_PATHS.has(path)) return;
    if (check === undefined) {
      await reply
        .code(401)
        .header('www-authenticate', CHALLENGE)
        .send({ error: 'the flow-tracker API is off: set TRACKER_API_TOKEN (or TRACKER_API_TOKEN_FILE)' });
      return;
    }
    if (!check(request.headers.authorization)) {
      await reply
        .code(401)
        .header('www-authenticate', CHALLENGE)
        .send({ error: 'missing or wrong bearer token (Authorization: Bearer <TRACKER_API_TOKEN>)' });
    }
  });
}
