export { elementText } from './element-text.js';
export { canonicalJson, hashFlow } from './flow-hash.js';
export { formatFieldPath, formatProblem, type FlowProblem } from './flow-problem.js';
export {
  FLOW_FILE_PATTERN,
  loadFlowDirectory,
  loadFlowFile,
  type FlowDirectory,
  type LoadedFlow,
  type LoadFlowResult,
} from './load-flows.js';
export { FlowMatcher, matchFlow, type MatchInstance, type MatchResult } from './match-flow.js';
export { parseFlow, type ParseFlowResult } from './parse-flow.js';
export {
  checkTarSubdir,
  checkTriggers,
  compilePattern,
  compileTriggers,
  InvalidTriggerError,
  tagOf,
  type CompiledTag,
  type CompiledTriggerMap,
  type TriggerCheck,
  type TriggerPattern,
} from './trigger-patterns.js';
