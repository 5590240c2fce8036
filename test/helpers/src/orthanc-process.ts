import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startListeningProcess, freePort, waitForPort } from './storescp-process.js';

/** A DICOM node Orthanc knows (its `DicomModalities`): the AE titles it accepts calls from. */
export interface OrthancModality {
  readonly aeTitle: string;
  readonly host?: string;
  readonly port?: number;
}

export interface OrthancOptions {
  /** Orthanc's own AE title (default ORTHANC). */
  aeTitle?: string;
  /** Known modalities by name. */
  modalities?: Readonly<Record<string, OrthancModality>>;
  /**
   * Accept C-STORE from any calling AE title (default true). False: only the known modalities may
   * associate; any other calling AE title is rejected permanently (calling AE title not recognised).
   */
  allowAnyCaller?: boolean;
  /** Reject calls whose called AE title is not Orthanc's (default true). */
  checkCalledAeTitle?: boolean;
  /** Transfer syntax UIDs accepted (Orthanc's `AcceptedTransferSyntaxes`, wildcards allowed); default all. */
  acceptedTransferSyntaxes?: readonly string[];
  /**
   * Loads Debian's DICOMweb plugin (`orthanc-dicomweb`): Orthanc then serves QIDO/WADO/STOW-RS under
   * `/dicom-web/` and can push to the DICOMweb servers named here (`/dicom-web/servers/<name>/stow`).
   */
  dicomWeb?: { readonly servers?: Readonly<Record<string, OrthancDicomWebServer>> };
  /** The REST (and DICOMweb) port; default a free one. A test that starts Orthanc late names the port. */
  httpPort?: number;
  /** More Orthanc configuration, merged last. */
  extraConfig?: Readonly<Record<string, unknown>>;
}

/** A DICOMweb server Orthanc's plugin can push to: its base URL and extra HTTP headers (a token, say). */
export interface OrthancDicomWebServer {
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Where Debian's `orthanc-dicomweb` package puts the plugin. */
export const ORTHANC_DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

/** One stored instance as Orthanc's REST API lists it. */
export interface OrthancInstance {
  readonly id: string;
  readonly sopInstanceUid: string;
}

/** A running Orthanc: its DICOM and REST ports and a few REST calls tests need. */
export interface RunningOrthanc {
  readonly aeTitle: string;
  readonly dicomPort: number;
  readonly httpPort: number;
  readonly dir: string;
  /** Every stored instance. */
  instances(): Promise<OrthancInstance[]>;
  /** The stored Part-10 file of an instance (by Orthanc id). */
  instanceFile(id: string): Promise<Buffer>;
  /** Stops Orthanc and removes its folder. */
  stop(): Promise<void>;
}

/**
 * Starts Debian's `Orthanc` binary on free DICOM and HTTP ports (loopback only), with a generated JSON
 * configuration and its storage in a new temp folder. Resolves once both ports accept connections.
 */
export async function startOrthanc(opts: OrthancOptions = {}): Promise<RunningOrthanc> {
  const dir = await mkdtemp(join(tmpdir(), 'orthanc-'));
  const aeTitle = opts.aeTitle ?? 'ORTHANC';
  const dicomPort = await freePort();
  const httpPort = opts.httpPort ?? (await freePort());
  const allowAny = opts.allowAnyCaller ?? true;
  const modalities = Object.fromEntries(
    Object.entries(opts.modalities ?? {}).map(([name, m]) => [
      name,
      [m.aeTitle, m.host ?? '127.0.0.1', m.port ?? 104],
    ]),
  );
  const config = {
    Name: `test-${aeTitle}`,
    StorageDirectory: join(dir, 'storage'),
    IndexDirectory: join(dir, 'index'),
    StorageCompression: false,
    HttpServerEnabled: true,
    HttpPort: httpPort,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomServerEnabled: true,
    DicomAet: aeTitle,
    DicomPort: dicomPort,
    DicomCheckCalledAet: opts.checkCalledAeTitle ?? true,
    DicomModalities: modalities,
    // With every "always allow" off, Orthanc accepts associations only from known modalities.
    DicomAlwaysAllowEcho: allowAny,
    DicomAlwaysAllowStore: allowAny,
    DicomAlwaysAllowFind: false,
    DicomAlwaysAllowMove: false,
    DicomAlwaysAllowGet: false,
    DicomCheckModalityHost: false,
    UnknownSopClassAccepted: true,
    AcceptedTransferSyntaxes: opts.acceptedTransferSyntaxes ?? ['1.2.840.10008.*'],
    Plugins: opts.dicomWeb ? [ORTHANC_DICOMWEB_PLUGIN] : [],
    ...(opts.dicomWeb
      ? {
          DicomWeb: {
            Enable: true,
            Root: '/dicom-web/',
            Servers: Object.fromEntries(
              Object.entries(opts.dicomWeb.servers ?? {}).map(([name, server]) => [
                name,
                { Url: server.url, ...(server.headers ? { HttpHeaders: server.headers } : {}) },
              ]),
            ),
          },
        }
      : {}),
    ...opts.extraConfig,
  };
  const configPath = join(dir, 'orthanc.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  let running;
  try {
    running = await startListeningProcess('Orthanc', [configPath], {
      port: dicomPort,
      cwd: dir,
      timeoutMs: 30_000,
    });
    await waitForPort(httpPort, '127.0.0.1', 30_000);
  } catch (error) {
    await running?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const process = running;
  const base = `http://127.0.0.1:${httpPort}`;
  const getJson = async (path: string): Promise<unknown> => {
    const response = await fetch(`${base}${path}`);
    if (!response.ok) throw new Error(`Orthanc GET ${path}: HTTP ${response.status}`);
    return response.json();
  };
  return {
    aeTitle,
    dicomPort,
    httpPort,
    dir,
    async instances() {
      const listed = (await getJson('/instances?expand')) as {
        ID: string;
        MainDicomTags: { SOPInstanceUID?: string };
      }[];
      return listed.map((i) => ({ id: i.ID, sopInstanceUid: i.MainDicomTags.SOPInstanceUID ?? '' }));
    },
    async instanceFile(id) {
      const response = await fetch(`${base}/instances/${id}/file`);
      if (!response.ok) throw new Error(`Orthanc GET /instances/${id}/file: HTTP ${response.status}`);
      return Buffer.from(await response.arrayBuffer());
    },
    async stop() {
      await process.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
