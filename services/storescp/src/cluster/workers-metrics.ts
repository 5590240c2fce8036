import { AggregatorRegistry, Registry } from 'prom-client';

/**
 * What `/metrics` serves when receiver workers run: the service process's own registry and each live
 * worker's, read when scraped and merged by prom-client's cluster aggregation (counters and gauges summed,
 * process metrics as prom-client defines). A worker's counts leave the sum with it when it dies, as a
 * restarted process's would.
 */
export class WorkersMetricsRegistry extends Registry {
  constructor(
    private readonly own: Registry,
    /** Each live worker's `getMetricsAsJSON()`; undefined for one that did not answer. */
    private readonly workers: () => Promise<readonly (object[] | undefined)[]>,
  ) {
    super();
  }

  override async metrics(): Promise<string> {
    const [own, workers] = await Promise.all([this.own.getMetricsAsJSON(), this.workers()]);
    const all: object[][] = [own];
    for (const metrics of workers) if (metrics) all.push(metrics);
    return AggregatorRegistry.aggregate(all).metrics();
  }
}
