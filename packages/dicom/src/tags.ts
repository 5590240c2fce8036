import dcmjs from 'dcmjs';

const HEX_TAG = /^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$/;

/**
 * Resolves a DICOM keyword (`StudyInstanceUID`) or tag (`(0020,000D)`, `0020000D`) to the 8-hex-digit
 * upper-case form dcmjs uses as a key; undefined when it is neither.
 */
export function resolveTag(keywordOrTag: string): string | undefined {
  const match = HEX_TAG.exec(keywordOrTag.trim());
  if (match?.[1] && match[2]) return `${match[1]}${match[2]}`.toUpperCase();
  const entry = dcmjs.data.DicomMetaDictionary.nameMap[keywordOrTag.trim()];
  return entry ? dcmjs.data.DicomMetaDictionary.unpunctuateTag(entry.tag) : undefined;
}

export const Tags = {
  SOPClassUID: '00080016',
  SOPInstanceUID: '00080018',
  Modality: '00080060',
  StudyInstanceUID: '0020000D',
  SeriesInstanceUID: '0020000E',
  PixelData: '7FE00010',
} as const;

/**
 * True for a tag of the Patient group (0010,xxxx): name, IDs, birth date, address and the like. Such
 * values must not name tar members or folders, which travel in messages and appear in logs.
 */
export function isPatientTag(tag: string): boolean {
  return tag.toUpperCase().startsWith('0010');
}

/**
 * The keywords of `keywords` that name a patient attribute ({@link isPatientTag}); for refusing them in
 * TAR_SUBDIR and a flow's tar_subdir.
 */
export function patientKeywords(keywords: readonly string[]): string[] {
  return keywords.filter((keyword) => {
    const tag = resolveTag(keyword);
    return tag !== undefined && isPatientTag(tag);
  });
}
