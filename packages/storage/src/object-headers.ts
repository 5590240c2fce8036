const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

// Headers S3 stores as object properties rather than as user metadata (x-amz-meta-*).
const SYSTEM_HEADERS: ReadonlySet<string> = new Set([
  'content-type',
  'cache-control',
  'content-encoding',
  'content-disposition',
  'content-language',
  'x-amz-storage-class',
]);

/**
 * Turns caller metadata into PUT headers: `Content-Type` and the other standard properties pass through,
 * everything else becomes `x-amz-meta-<name>`. Without a content type, objects are plain octet streams.
 */
export function objectHeaders(metadata: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata)) {
    const lower = name.toLowerCase();
    const isStandard = SYSTEM_HEADERS.has(lower) || lower.startsWith('x-amz-meta-');
    headers[isStandard ? lower : `x-amz-meta-${lower}`] = value;
  }
  headers['content-type'] ??= DEFAULT_CONTENT_TYPE;
  return headers;
}

/** Strips the quotes S3 puts around ETags. */
export function sanitizeEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^"|"$/g, '').replace(/^&quot;|&quot;$/g, '');
}
