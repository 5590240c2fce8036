export { CommandFailedError, FixtureError, PortNotReadyError } from './errors.js';
export { newUid } from './uid.js';
export { CT_IMAGE_STORAGE, generateCtSeries } from './fixtures.js';
export type { DicomFixtureOptions } from './fixtures.js';
export { convertTransferSyntax, dumpedTransferSyntax, TRANSFER_SYNTAX_UIDS } from './transfer-syntax.js';
export type { TransferSyntaxName } from './transfer-syntax.js';
export { minimalJ2kCodestream } from './j2k-codestream.js';
export { truncatedCopy, withMissingTag, withSopClass } from './broken-files.js';
export { SPACES_THEN_X, WORDS_THEN_ENDS, withLongText } from './long-values.js';
export type { MissingTagKeyword } from './broken-files.js';
export { echoscu, storescu } from './dcmtk-scu.js';
export type { StoreScuOptions, StoreScuResult } from './dcmtk-scu.js';
export {
  associateRq,
  commandStatus,
  pDataPdus,
  pdu,
  rawStoreScu,
  readCommand,
  storeCommand,
} from './raw-store-scu.js';
export type { RawStoreScuOptions, RawStoreScuResult } from './raw-store-scu.js';
export { PduReader } from './raw-pdu.js';
export type { Pdu } from './raw-pdu.js';
export { freePort, startDcmtkStorescp, startListeningProcess, waitForPort } from './storescp-process.js';
export type { DcmtkStorescpOptions, RunningProcess } from './storescp-process.js';
export { datasetDigest, readFileMeta, sha256File } from './part10-meta.js';
export type { FileMeta } from './part10-meta.js';
export { nodelayShimPath, NODELAY_SOURCE } from './nodelay-shim.js';
export { ORTHANC_DICOMWEB_PLUGIN, startOrthanc } from './orthanc-process.js';
export type {
  OrthancDicomWebServer,
  OrthancInstance,
  OrthancModality,
  OrthancOptions,
  RunningOrthanc,
} from './orthanc-process.js';
export { runCommand, runChecked } from './run-command.js';
export type { CommandResult, RunOptions } from './run-command.js';
export { testBrokerConfig, testEnvironment, testStorageConfig } from './test-environment.js';
export type { TestBrokerConfig } from './test-environment.js';
export { waitFor } from './wait-for.js';
export { metricValue, readMetrics } from './prometheus-metrics.js';
export {
  buildTestModelImage,
  COPY_MODEL,
  dockerImageExists,
  ensureTestBaseImage,
  TEST_BASE_IMAGE,
} from './docker-images.js';
export type { TestModelImage } from './docker-images.js';
export { startRabbitNode } from './rabbit-node.js';
export type { RabbitNode, RabbitNodeOptions, RabbitTlsListener } from './rabbit-node.js';
export { startPostgresCluster } from './postgres-cluster.js';
export type { PostgresCluster, PostgresClusterOptions, PostgresSslOptions } from './postgres-cluster.js';
export { startDockerEngine } from './docker-engine.js';
export { makeTestCertificates } from './test-certificates.js';
export type { CertificateFiles, IssueOptions, TestCa, TestCertificates } from './test-certificates.js';
export type { DockerEngine } from './docker-engine.js';
