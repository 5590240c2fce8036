// A TCP relay that passes the server's answers on at most BENCH_S3_MBPS megabytes per second (per
// connection), to measure the sender as if S3 were behind a network link rather than on loopback.
// Run by bench/send/flow.mjs as its own process: node throttle-relay.mjs <upstream port> <MB/s>.
// Prints the port it listens on.
import { connect, createServer } from 'node:net';
import console from 'node:console';
import { performance } from 'node:perf_hooks';
import { setTimeout } from 'node:timers';
import process from 'node:process';

const upstreamPort = Number(process.argv[2]);
const bytesPerMs = (Number(process.argv[3]) * 1e6) / 1000;
const server = createServer((client) => {
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
  const end = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', end).on('close', end);
  upstream.on('error', end).on('close', end);
  client.pipe(upstream);
  // Each chunk goes out when the link would have carried it: the upstream pauses until then.
  let free = performance.now();
  upstream.on('data', (chunk) => {
    const now = performance.now();
    free = Math.max(free, now) + chunk.length / bytesPerMs;
    const wait = free - now;
    if (wait < 1) {
      client.write(chunk);
      return;
    }
    upstream.pause();
    setTimeout(() => {
      client.write(chunk);
      upstream.resume();
    }, wait);
  });
});
server.listen(0, '127.0.0.1', () => console.log(String(server.address().port)));
