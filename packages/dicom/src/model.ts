/** One element in the DICOM JSON model (PS3.18 F.2). */
export interface DicomJsonElement {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
  BulkDataURI?: string;
}

/** A dataset in the DICOM JSON model, keyed by 8-hex-digit tag. */
export type DicomJsonDataset = Record<string, DicomJsonElement>;
