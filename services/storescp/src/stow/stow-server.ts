import type { Registry } from 'prom-client';
import { bearerTokenCheck, createHttpServer, type HttpServer, type ReadinessCheck } from '@dicomflow/runtime';
import { registerStowRoutes } from './stow-route.js';
import type { StowAnswer, StowContext } from './stow-request.js';

/** Where and how the STOW-RS receiver listens. */
export interface StowServerOptions {
  readonly port: number;
  readonly host: string;
  /** STOW_TOKEN; empty leaves STOW-RS off (nothing listens). */
  readonly token: string;
  /** A connection without traffic this long is closed (a stalled upload holds a spool file otherwise). */
  readonly idleTimeoutMs: number;
  /** Served on its `/metrics`, as on the service's HTTP port. */
  readonly registry: Registry;
  /** What its `/readyz` checks, as on the service's HTTP port. */
  readonly checks: readonly ReadinessCheck[];
}

/**
 * The receiver's DICOMweb side: an HTTP server of its own (STOW_PORT) with the STOW-RS routes, beside the
 * runtime's `/healthz`, `/readyz` and `/metrics`; only with a token configured, since every request must
 * carry it. It tracks the requests under way, so that closing stops taking new ones, waits for these
 * (bounded) and returns once each has handed over its group.
 */
export class StowServer {
  private readonly http: HttpServer | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly ctx: StowContext,
    opts: StowServerOptions,
  ) {
    const tokenMatches = bearerTokenCheck(opts.token);
    if (!tokenMatches) return;
    this.http = createHttpServer({
      logger: ctx.logger,
      port: opts.port,
      host: opts.host,
      registry: opts.registry,
      checks: opts.checks,
    });
    this.http.app.server.setTimeout(opts.idleTimeoutMs);
    registerStowRoutes(this.http.app, ctx, tokenMatches, (work) => this.track(work));
  }

  /** Starts listening; resolves with the bound port (0 when STOW-RS is off). */
  async listen(): Promise<number> {
    if (!this.http) {
      this.ctx.logger.info('STOW-RS is off: set STOW_TOKEN to receive instances over DICOMweb');
      return 0;
    }
    const { port } = await this.http.listen();
    return port;
  }

  /** Requests whose instances are being received now. */
  openRequests(): number {
    return this.inFlight.size;
  }

  /** Stops taking requests, waits up to `drainMs` for those under way, then cuts their connections. */
  async close(drainMs: number): Promise<void> {
    const http = this.http;
    if (!http) return;
    const cut = setTimeout(() => {
      http.app.server.closeAllConnections();
    }, drainMs);
    try {
      await http.close();
    } finally {
      clearTimeout(cut);
    }
    await Promise.allSettled([...this.inFlight]);
  }

  private track(work: Promise<StowAnswer>): Promise<StowAnswer> {
    this.inFlight.add(work);
    const forget = (): void => {
      this.inFlight.delete(work);
    };
    work.then(forget, forget);
    return work;
  }
}
