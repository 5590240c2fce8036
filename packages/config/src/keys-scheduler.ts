import { key } from './key-spec.js';
import { text, type ItemRule } from './value-kinds.js';

/** A PostgreSQL identifier we create and quote ourselves: lower case, digits and underscores. */
export const sqlIdentifierRule: ItemRule = {
  expects: 'a PostgreSQL name: a lower-case letter or _, then lower-case letters, digits or _ (at most 63)',
  accepts: (item) => /^[a-z_][a-z0-9_]{0,62}$/.test(item),
};

/** Run scheduler. */
export const schedulerKeys = {
  SCHEDULER_DB_SCHEMA: key(
    text(sqlIdentifierRule),
    'scheduler',
    'PostgreSQL schema holding the run state of the scheduler (created with its tables at start if missing).',
  ),
};
