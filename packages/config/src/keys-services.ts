import { key } from './key-spec.js';
import { sqlIdentifierRule } from './keys-scheduler.js';
import {
  aeTitleRule,
  dicomKeywordRule,
  flag,
  gpuIdRule,
  integer,
  ipOrCidrRule,
  list,
  oneOf,
  port,
  positiveNumber,
  text,
} from './value-kinds.js';

/** DICOM receiver (C-STORE SCP). */
export const storescpKeys = {
  AE_TITLE: key(text(aeTitleRule), 'STORESCP', 'AE title of the receiver.'),
  AE_HOSTNAME: key(text(), '0.0.0.0', 'Address the DICOM receiver binds to.'),
  AE_PORT: key(port, 10000, 'Port of the DICOM receiver.'),
  AE_TLS_PORT: key(
    port,
    0,
    'Port of a second DICOM listener that speaks DICOM TLS (BCP 195: TLS 1.2 or 1.3 only) on AE_HOSTNAME; 0 = off. The plain AE_PORT stays open.',
  ),
  AE_TLS_CERT: key(
    text(),
    '',
    'PEM certificate of the DICOM TLS listener (required when AE_TLS_PORT is set).',
  ),
  AE_TLS_KEY: key(text(), '', 'PEM private key of AE_TLS_CERT.'),
  AE_TLS_CA: key(
    text(),
    '',
    "PEM file of the CA(s) that callers' client certificates must chain to ('' = callers are not asked for one).",
  ),
  AE_TLS_REQUIRE_CLIENT_CERT: key(
    flag,
    false,
    'Refuse DICOM TLS callers without a client certificate of AE_TLS_CA (needs AE_TLS_CA).',
  ),
  GROUPING: key(
    oneOf(['association', 'study', 'series']),
    'association',
    'What one receipt holds: everything of one association (on release), or one study / series across associations (complete when it holds the count its instances announce, see GROUP_COUNT_TAGS_*, else after GROUP_TIMEOUT without a new instance).',
  ),
  GROUP_TIMEOUT: key(
    positiveNumber,
    60,
    'Seconds without a new instance after which a study/series group is complete (the fallback when no count is announced or it is never reached).',
  ),
  GROUP_COUNT_TAGS_SERIES: key(
    list(dicomKeywordRule),
    ['NumberOfSeriesRelatedInstances', 'ImagesInAcquisition'],
    'With GROUPING=series: tags whose integer value is the number of instances of the series (the first present counts; the largest announced wins). The group completes as soon as it holds that many distinct instances. Empty: GROUP_TIMEOUT only.',
  ),
  GROUP_COUNT_TAGS_STUDY: key(
    list(dicomKeywordRule),
    ['NumberOfStudyRelatedInstances'],
    'With GROUPING=study: tags whose integer value is the number of instances of the study, as GROUP_COUNT_TAGS_SERIES. Empty: GROUP_TIMEOUT only.',
  ),
  TAR_SUBDIR: key(
    list(dicomKeywordRule),
    [],
    'DICOM keywords whose values form the sub-folders of tar members (e.g. StudyInstanceUID SeriesInstanceUID); flows may override it.',
  ),
  SPOOL_DIR: key(
    text(),
    '/var/lib/dicomflow/spool',
    'Local folder where instances are written as they arrive.',
  ),
  SPOOL_FSYNC: key(flag, true, 'fsync each instance to the spool before answering success.'),
  RECEIPT_EARLY_UPLOAD: key(
    flag,
    true,
    'Upload the receipt tar to S3 in 8 MiB parts while its instances arrive, so that it is stored moments after the group completes; off: the whole tar is uploaded then.',
  ),
  INDEX_MAX_VALUE_BYTES: key(
    integer(64),
    65536,
    'Longest element value, in bytes, that the receipt index keeps whole; a longer value is cut there and marked TruncatedFrom (the instance is stored whole). Matching sees what the index holds.',
  ),
  MAX_PDU: key(integer(0), 116794, 'Maximum PDU length in bytes the receiver offers (0 = unlimited).'),
  MAX_INSTANCE_BYTES: key(
    integer(1),
    4 * 1024 ** 3,
    'Largest dataset of one C-STORE kept, in bytes (4 GiB); a larger one is still read to its end (the association goes on) but dropped, and answered 0xA700 (out of resources).',
  ),
  MAX_ASSOCIATIONS: key(integer(1), 32, 'Maximum number of simultaneous associations.'),
  RECEIVER_WORKERS: key(
    integer(1),
    1,
    'Processes that receive DICOM associations, all on AE_PORT (and AE_TLS_PORT); 1 = the service process itself. More (e.g. the number of CPU cores) spreads parallel associations over cores; grouping, publishing, STOW-RS and HTTP stay in the service process.',
  ),
  CHECK_CALLED_AE_TITLE: key(flag, true, 'Reject associations whose called AE title is not AE_TITLE.'),
  ALLOWED_CALLING_AE_TITLES: key(
    list(aeTitleRule),
    [],
    'Calling AE titles that may connect (empty = any not denied).',
  ),
  DENIED_CALLING_AE_TITLES: key(list(aeTitleRule), [], 'Calling AE titles that are rejected.'),
  ALLOWED_HOSTS: key(
    list(ipOrCidrRule),
    [],
    'IP addresses or CIDR blocks that may connect (empty = any not denied).',
  ),
  DENIED_HOSTS: key(list(ipOrCidrRule), [], 'IP addresses or CIDR blocks that are rejected.'),
  ACCEPT_UNKNOWN_SOP_CLASSES: key(
    flag,
    true,
    'Accept storage SOP classes not in the standard list (e.g. private ones).',
  ),
  ASSOCIATION_IDLE_TIMEOUT: key(
    positiveNumber,
    60,
    'Seconds without traffic after which an association is aborted.',
  ),
};

/** Flow matcher. */
export const fingerprinterKeys = {
  FLOW_DIRECTORY: key(
    text(),
    '/opt/dicomflow/flows',
    'Folder of flow definition files (*.yaml), watched for changes.',
  ),
};

/** Container runner. */
export const consumerKeys = {
  CPUS: key(integer(0), 1, 'Number of CPU jobs run at the same time (0 = take no CPU jobs).'),
  GPUS: key(
    list(gpuIdRule),
    [],
    'GPU ids this consumer runs GPU jobs on, one job per GPU (empty = take no GPU jobs).',
  ),
  DOCKER_HOST: key(text(), '', 'Docker daemon address (empty = the default local socket).'),
  CONSUMER_ID: key(
    text(),
    '',
    "Id of this consumer on its Docker engine, stable across restarts (empty = its container's name when it runs in a container of that engine, as under compose, where the name stays per replica while the host name changes with each recreate; else the host name); each consumer sharing an engine needs its own, since a consumer removes the containers and job folders of its id left behind at start.",
  ),
  MAX_OUTPUT_BYTES: key(
    integer(0),
    10 * 1024 * 1024 * 1024,
    'Largest model output accepted (sum of its file sizes, bytes); a larger one fails the job (reason output). Checked while the model runs too: past it, the container is stopped.',
  ),
  MAX_OUTPUT_ENTRIES: key(
    integer(1),
    100_000,
    'Most files and folders in a model output (empty ones count too); more fails the job (reason output). Checked while the model runs too: past it, the container is stopped.',
  ),
  CONSUMER_WORK_DIR: key(
    text(),
    '',
    'Work folder shared with the Docker engine, as this consumer sees it: each job gets input and output folders there, bind-mounted into its container (empty = copy through the Engine API archive calls instead, slower).',
  ),
  CONSUMER_WORK_DIR_HOST: key(
    text(),
    '',
    'The same work folder as the Docker engine host sees it (empty = CONSUMER_WORK_DIR); differs when the consumer runs in a container with the host folder mounted at another path.',
  ),
  CONSUMER_MEMORY_LIMIT: key(
    integer(0),
    16 * 1024 ** 3,
    'Memory limit of a model container in bytes when its flow sets no mem_limit (0 = none); a container past its limit is killed and the run fails with reason out-of-memory.',
  ),
  CONSUMER_MAX_MEMORY_LIMIT: key(
    integer(0),
    64 * 1024 ** 3,
    'Largest mem_limit a flow may ask for, in bytes (0 = no maximum); a job asking more fails with the reason, before its container is created.',
  ),
  CONSUMER_PIDS_LIMIT: key(
    integer(0),
    1024,
    'Most processes and threads in a model container when its flow sets no pids_limit (0 = none): a fork bomb fails inside its container.',
  ),
  CONSUMER_MAX_PIDS_LIMIT: key(integer(0), 32768, 'Largest pids_limit a flow may ask for (0 = no maximum).'),
  CONSUMER_DEFAULT_USER: key(
    text(),
    '',
    'User ("uid:gid", a uid or a name) for model containers whose image runs as root and whose flow sets no user (empty = off: the image\'s user, root included, without capabilities).',
  ),
};

/** Static content (model weights) service. */
export const staticStorageKeys = {
  STATIC_DIRECTORY: key(text(), '/opt/dicomflow/static', 'Folder of static content tars to publish to S3.'),
  STATIC_UPLOAD_TOKEN: key(
    text(),
    '',
    'Bearer token required to upload static content over HTTP (empty = uploads disabled).',
    { sensitive: true },
  ),
  STATIC_MAX_UPLOAD_BYTES: key(
    integer(1),
    64 * 1024 ** 3,
    'Largest static content upload over HTTP, in bytes (64 GiB); a larger one is refused with 413 (at once when its Content-Length says so) and nothing is stored.',
  ),
};

/** Event recorder behind the Grafana dashboard. */
export const flowTrackerKeys = {
  PATIENT_COLUMN: key(
    oneOf(['none', 'pseudonym', 'initials']),
    'none',
    'What the tracker stores to identify the patient: nothing, a pseudonym, or initials.',
  ),
  PATIENT_PSEUDONYM_KEY: key(
    text(),
    '',
    'Secret key of the keyed hash (HMAC-SHA256) that makes the patient pseudonym; required when PATIENT_COLUMN is pseudonym.',
    { sensitive: true },
  ),
  TRACKER_API_TOKEN: key(
    text(),
    '',
    'Bearer token the flow-tracker API needs on every route but /healthz, /readyz and /metrics (empty = the API is off: 401 to every request). Prefer TRACKER_API_TOKEN_FILE.',
    { sensitive: true },
  ),
  TRACKER_DB_SCHEMA: key(
    text(sqlIdentifierRule),
    'tracker',
    'PostgreSQL schema holding the tracker tables (created with them by its migrations at start); the Grafana dashboard reads it.',
  ),
};
