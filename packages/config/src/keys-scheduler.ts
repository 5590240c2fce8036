import { key } from './key-spec.js';
import { text, type ItemRule } from './value-kinds.js';

/** A PostgreSQL identifier we create and quote ourselves: lower case, digits and underscores. */
const sqlIdentifierRule: ItemRule = {
  expects: 'a PostgreSQL name: a lower-case letter or _, then lower-case letters, digits or _ (at most 63)',
  accepts: (item) => /^[a-z_][a-z0-9_]{0,62}$/.test(item),
};

/** An AMQP exchange or queue name part (RabbitMQ allows up to 255 bytes; we keep it readable). */
const amqpNameRule: ItemRule = {
  expects: 'letters, digits, ".", "_" or "-" (at most 200)',
  accepts: (item) => /^[A-Za-z0-9._-]{0,200}$/.test(item),
};

/** Run scheduler. */
export const schedulerKeys = {
  SCHEDULER_DB_SCHEMA: key(
    text(sqlIdentifierRule),
    'scheduler',
    'PostgreSQL schema holding the run state of the scheduler (created with its tables at start if missing).',
  ),
  RABBIT_EXCHANGE: key(
    text({ ...amqpNameRule, accepts: (item) => item !== '' && amqpNameRule.accepts(item) }),
    'dicomflow',
    'Topic exchange the scheduler consumes from and publishes to; dead letters go to "<name>.dead". Every service uses dicomflow: change it only to run an isolated copy beside another (tests).',
  ),
  RABBIT_QUEUE_PREFIX: key(
    text(amqpNameRule),
    '',
    'Prepended to the names of the queues the scheduler declares (scheduler.*, jobs.cpu, jobs.gpu), to run an isolated copy beside another (tests); consumers must use the same prefix.',
  ),
};
