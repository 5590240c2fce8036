export { SCHEMA_VERSION, ROUTING_KEYS, isRoutingKey, type RoutingKey } from './routing-keys.js';
export { DicomUid, StringEnum } from './schema-parts.js';
export { GROUPINGS, StudyReceived, ReceivedStudy, ReceivedSeries, type Grouping } from './study-received.js';
export { ReceiptIndex, ReceiptIndexHeader, ReceiptIndexInstance } from './receipt-index.js';
export {
  DEFAULT_MAX_INDEX_LINE_BYTES,
  formatReceiptIndex,
  formatReceiptIndexHeader,
  formatReceiptIndexInstance,
  readReceiptIndex,
  readLines,
  readReceiptIndexLines,
  ReceiptIndexFormatError,
} from './receipt-index-lines.js';
export { DeliveredInstanceLine, formatDeliveredLine, readDeliveredLines } from './delivered-manifest.js';
export {
  MESSAGE_SCHEMAS,
  isSchemaRoutingKey,
  messageJsonSchemas,
  type MessageOf,
  type SchemaRoutingKey,
} from './registry.js';
export { validateMessage, validateReceiptIndex, validateWith, type ValidationResult } from './validate.js';
export { DockerKwargs, REFUSED_DOCKER_KWARGS } from './docker-kwargs.js';
export {
  CompleteFlowDefinition,
  FlowDefinition,
  FlowModel,
  TRIGGER_KEY_PATTERN,
  TriggerMap,
  TriggerPatterns,
} from './flow-definition.js';
export {
  BEARER_TOKEN_PATTERN,
  DICOMWEB_URL_PATTERN,
  DicomWebDestination,
  DicomWebUrl,
  DimseDestination,
  FlowDestination,
  TOKEN_FILE_PATTERN,
  destinationText,
  isDicomWebDestination,
} from './destination.js';
export { checkFlowDefinition, type FlowCheckResult, type FlowIssue, type FlowPath } from './flow-check.js';
export { flowJsonSchema } from './flow-json-schema.js';
export { FlowMatched } from './flow-matched.js';
export {
  JOB_FAILURE_REASONS,
  JOB_QUEUES,
  JOB_ROUTING_KEYS,
  Job,
  JobFailed,
  JobFinished,
  JobInput,
  JobStarted,
  ObjectLocation,
  ReceiptJobInput,
  StepIndex,
  StepJobInput,
  jobRoutingKey,
  type JobFailureReason,
  type JobRoutingKey,
} from './jobs.js';
export {
  FLOW_FAILURE_REASONS,
  FlowFailed,
  FlowFinished,
  ReturnToSender,
  type FlowFailureReason,
} from './flow-outcome.js';
export {
  DICOMFLOW_ID_NAMESPACE,
  flowFailedMessageId,
  flowFinishedMessageId,
  jobFailedMessageId,
  jobFinishedMessageId,
  jobMessageId,
  jobStartedMessageId,
  rerunMessageId,
  rerunRunIdFor,
  resendMessageId,
  sendFailedMessageId,
  sendFinishedMessageId,
  sendStartedMessageId,
} from './message-ids.js';
export { FlowRerun, Resend } from './recovery.js';
export {
  SEND_FAILURE_REASONS,
  SEND_TARGET_KINDS,
  DicomWebSendTarget,
  DimseSendTarget,
  isDicomWebTarget,
  SendFailed,
  SendFinished,
  SendInstanceFailure,
  SendRetryError,
  SendRetrying,
  SendStarted,
  SendTarget,
  SendTargetOutcome,
  SkippedMembers,
  sendTargetText,
  type SendFailureReason,
  type SendTargetKind,
} from './send-outcome.js';
