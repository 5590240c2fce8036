// Minimal typings for the part of dcmjs this package uses (dcmjs ships no types): the keyword dictionary.
declare module 'dcmjs' {
  export interface DictionaryEntry {
    tag: string;
    name: string;
  }
  export const data: {
    DicomMetaDictionary: { nameMap: Record<string, DictionaryEntry | undefined> };
  };
  const dcmjs: { data: typeof data };
  export default dcmjs;
}
