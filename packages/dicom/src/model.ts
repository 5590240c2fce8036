/** One element in the DICOM JSON model (PS3.18 F.2). */
export interface DicomJsonElement {
  vr: string;
  Value?: unknown[];
  InlineBinary?: string;
  BulkDataURI?: string;
  /** Set by our reader: the value had this many bytes, more than the index keeps; `Value` holds the start. */
  TruncatedFrom?: number;
  /** Set by our reader: the text is not valid in its character set; `Value` holds its bytes read as Latin-1. */
  Undecodable?: true;
}

/** A dataset in the DICOM JSON model, keyed by 8-hex-digit tag. */
export type DicomJsonDataset = Record<string, DicomJsonElement>;
