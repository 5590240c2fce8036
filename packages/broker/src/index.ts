export { connectBroker, type Broker, type BrokerOptions, type Subscription } from './broker.js';
export type { BrokerConfig } from './connection.js';
export {
  DEFAULT_RETRY_DELAYS_MS,
  type ConsumeSpec,
  type DeliveryContext,
  type MessageHandler,
} from './consumer.js';
export {
  ATTEMPT_HEADER,
  OUTAGE_HEADER,
  DEAD_AT_HEADER,
  ERROR_HEADER,
  QUEUE_HEADER,
  REASON_HEADER,
  type DeadLetterReason,
} from './delivery.js';
export { GoneError, PermanentError, TransientError, errorKind, type ErrorKind } from './errors.js';
export { UnroutableError, type PublishOptions } from './publisher.js';
export { DEAD_EXCHANGE, EXCHANGE, MAX_PRIORITY, deadQueueName, retryQueueName } from './topology.js';
export {
  deleteSuiteQueues,
  suiteQueueList,
  suiteQueues,
  type SuiteQueue,
  type SuiteQueues,
} from './suite-queues.js';
export {
  connectForDeadLetters,
  listDeadLetters,
  replayDeadLetters,
  REPLAYED_AT_HEADER,
  type DeadLetter,
} from './dead-letters.js';
