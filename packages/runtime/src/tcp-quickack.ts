import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

interface QuickAckAddon {
  setQuickAck(fd: number): boolean;
}

/** The addon built by scripts/build-native.mjs, or undefined where it could not be built or loaded. */
const addon: QuickAckAddon | undefined = (() => {
  try {
    return createRequire(import.meta.url)('../native/build/quickack.node') as QuickAckAddon;
  } catch {
    return undefined;
  }
})();

/** True when sockets can be put in TCP_QUICKACK mode here (Linux, with the addon built). */
export function quickAckAvailable(): boolean {
  return addon !== undefined;
}

/** The file descriptor of a connected TCP socket; libuv keeps it on the socket's private handle. */
function fdOf(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } })._handle;
  return typeof handle?.fd === 'number' && handle.fd >= 0 ? handle.fd : undefined;
}

/**
 * Makes a TCP socket acknowledge what it receives at once: TCP_NODELAY for what we send, and TCP_QUICKACK,
 * re-armed after every read (Linux leaves quick-ack mode by itself), for what we receive. A peer that
 * leaves Nagle's algorithm on (Debian's dcmtk) holds each small segment until the previous one is
 * acknowledged; with delayed ACKs that is about 40 ms per DICOM message. Returns false when only
 * TCP_NODELAY could be set.
 */
export function acknowledgePromptly(socket: Socket): boolean {
  socket.setNoDelay(true);
  if (addon === undefined) return false;
  const rearm = (): void => {
    const fd = fdOf(socket);
    if (fd !== undefined) addon.setQuickAck(fd);
  };
  rearm();
  socket.prependListener('data', rearm);
  return fdOf(socket) !== undefined;
}
