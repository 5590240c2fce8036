// Fixtures shared by the matchFlow table tests.
import { checkFlowDefinition, type FlowDefinition, type TriggerMap } from '@dicomflow/messages';
import { matchFlow, type MatchInstance, type MatchResult } from '../index.js';
export type { MatchInstance };

/** Elements by tag: `['00080060', 'CS', 'CT']` style, values as the DICOM JSON model carries them. */
export type Element = readonly [tag: string, vr: string, ...values: unknown[]];

export const MODALITY = '00080060';
export const SERIES_DESCRIPTION = '0008103E';
export const STUDY_DESCRIPTION = '00081030';
export const PATIENT_NAME = '00100010';
export const IMAGE_TYPE = '00080008';
export const SLICE_THICKNESS = '00180050';
export const PIXEL_SPACING = '00280030';
export const INSTANCE_NUMBER = '00200013';
export const PRIVATE_LO = '001910A0';

export function file(member: string, ...elements: Element[]): MatchInstance {
  return {
    member,
    elements: Object.fromEntries(
      elements.map(([tag, vr, ...values]) => [tag, values.length === 0 ? { vr } : { vr, Value: values }]),
    ),
  };
}

export function flow(triggers: TriggerMap[]): FlowDefinition {
  const checked = checkFlowDefinition({ triggers });
  if (!checked.ok) throw new Error(`test flow is invalid: ${JSON.stringify(checked.issues)}`);
  return checked.flow;
}

export const ctHead = file(
  'ct-head',
  [MODALITY, 'CS', 'CT'],
  [SERIES_DESCRIPTION, 'LO', 'Head with Contrast'],
);
export const ctScout = file('ct-scout', [MODALITY, 'CS', 'CT'], [SERIES_DESCRIPTION, 'LO', 'Scout']);
export const mrT1 = file('mr-t1', [MODALITY, 'CS', 'MR'], [SERIES_DESCRIPTION, 'LO', 'T1 Head']);
export const mrLocalizer = file('mr-loc', [MODALITY, 'CS', 'MR'], [SERIES_DESCRIPTION, 'LO', 'Localizer']);
export const rtstruct = file('rtstruct', [MODALITY, 'CS', 'RTSTRUCT']);
export const study = [ctHead, ctScout, mrT1, mrLocalizer, rtstruct];

export interface Case {
  readonly name: string;
  readonly triggers: TriggerMap[];
  readonly files: readonly MatchInstance[];
  readonly triggered: boolean;
  readonly selected: readonly string[];
  readonly failedMaps?: readonly number[];
  readonly excluded?: readonly string[];
}

/** The parts of a {@link MatchResult} a table case states. */
export function outcomeOf(c: Case): Pick<MatchResult, 'triggered' | 'selected' | 'failedMaps' | 'excluded'> {
  const result = matchFlow(flow(c.triggers), c.files);
  return {
    triggered: result.triggered,
    selected: result.selected,
    failedMaps: result.failedMaps,
    excluded: result.excluded,
  };
}

/** What a table case expects, in the shape of {@link outcomeOf}. */
export function expectedOf(c: Case): ReturnType<typeof outcomeOf> {
  return {
    triggered: c.triggered,
    selected: c.selected,
    failedMaps: c.failedMaps ?? [],
    excluded: c.excluded ?? [],
  };
}
