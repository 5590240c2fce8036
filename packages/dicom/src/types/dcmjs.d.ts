// Minimal typings for the parts of dcmjs this package uses (dcmjs ships no types).
declare module 'dcmjs' {
  export interface DicomJsonElement {
    vr: string;
    Value?: unknown[];
    InlineBinary?: string;
    BulkDataURI?: string;
    _rawValue?: unknown;
  }
  export type DicomJsonDataset = Record<string, DicomJsonElement>;
  export interface ReadFileOptions {
    ignoreErrors?: boolean;
    untilTag?: string | null;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
  }
  export interface DictionaryEntry {
    tag: string;
    vr: string;
    vm: string;
    name: string;
  }
  export class DicomDict {
    constructor(meta: DicomJsonDataset);
    meta: DicomJsonDataset;
    dict: DicomJsonDataset;
    write(options?: Record<string, unknown>): ArrayBuffer;
  }
  export const data: {
    DicomMessage: {
      readFile(buffer: ArrayBuffer, options?: ReadFileOptions): DicomDict;
    };
    DicomDict: typeof DicomDict;
    DicomMetaDictionary: {
      nameMap: Record<string, DictionaryEntry | undefined>;
      dictionary: Record<string, DictionaryEntry | undefined>;
      unpunctuateTag(tag: string): string;
      punctuateTag(tag: string): string;
    };
  };
  export const log: { setLevel(level: string): void };
  const dcmjs: { data: typeof data; log: typeof log };
  export default dcmjs;
}
