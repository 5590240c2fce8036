import { mkdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { mapLimit, runChecked } from './run-command.js';
import { newUid } from './uid.js';

/** CT Image Storage. */
export const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';

export interface DicomFixtureOptions {
  studyInstanceUid?: string;
  seriesInstanceUid?: string;
  /** Defaults to CT Image Storage. */
  sopClassUid?: string;
  modality?: string;
  rows?: number;
  columns?: number;
  patientName?: string;
  patientId?: string;
  seriesNumber?: number;
}

const SLICE_SPACING_MM = 1.5;
const PIXEL_SPACING_MM = 0.7;

/**
 * A CT-like slice: air around a body ellipse with a bone ring, a structure that moves with the slice and
 * low noise. Stored values are unsigned (rescale intercept -1024), so compressors see realistic content.
 */
function slicePixels(rows: number, columns: number, slice: number): Buffer {
  const pixels = Buffer.alloc(rows * columns * 2);
  const cy = rows / 2;
  const cx = columns / 2;
  const ry = rows * 0.38;
  const rx = columns * 0.45;
  const organY = cy + Math.sin(slice / 7) * rows * 0.1;
  const organR = rows * (0.08 + 0.03 * Math.cos(slice / 5));
  let seed = (slice * 2654435761) >>> 0 || 1;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      const e = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2;
      let value = 0; // air: -1024 HU
      if (e < 1) value = e > 0.85 ? 2024 : 1064; // bone ring : soft tissue
      if ((x - cx * 0.8) ** 2 + (y - organY) ** 2 < organR ** 2) value = 1084 + ((x ^ y) & 31);
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      if (value > 0) value += (seed >>> 0) % 9;
      pixels.writeUInt16LE(value, (y * columns + x) * 2);
    }
  }
  return pixels;
}

// dump2dcm reads values in brackets up to the last ']' of the line; line breaks are the only hazard.
function text(value: string): string {
  return `[${value.replace(/[\r\n]/g, ' ')}]`;
}

function decimal(value: number): string {
  return String(Number(value.toFixed(3)));
}

interface SliceFields {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  readonly frameOfReferenceUid: string;
  readonly modality: string;
  readonly rows: number;
  readonly columns: number;
  readonly patientName: string;
  readonly patientId: string;
  readonly seriesNumber: number;
  readonly instanceNumber: number;
  readonly pixelFile: string;
}

function sliceDump(f: SliceFields): string {
  const z = (f.instanceNumber - 1) * SLICE_SPACING_MM;
  const originX = -(f.columns * PIXEL_SPACING_MM) / 2;
  const originY = -(f.rows * PIXEL_SPACING_MM) / 2;
  return [
    `(0002,0010) UI [1.2.840.10008.1.2.1]`,
    `(0008,0005) CS [ISO_IR 100]`,
    `(0008,0008) CS [ORIGINAL\\PRIMARY\\AXIAL]`,
    `(0008,0016) UI ${text(f.sopClassUid)}`,
    `(0008,0018) UI ${text(f.sopInstanceUid)}`,
    `(0008,0020) DA [20240102]`,
    `(0008,0030) TM [120000]`,
    `(0008,0050) SH [FIXTURE]`,
    `(0008,0060) CS ${text(f.modality)}`,
    `(0008,0070) LO [DICOMFLOW TEST]`,
    `(0008,1030) LO [Generated fixture study]`,
    `(0008,103e) LO [Generated fixture series]`,
    `(0010,0010) PN ${text(f.patientName)}`,
    `(0010,0020) LO ${text(f.patientId)}`,
    `(0010,0030) DA [19700101]`,
    `(0010,0040) CS [O]`,
    `(0018,0050) DS [${decimal(SLICE_SPACING_MM)}]`,
    `(0020,000d) UI ${text(f.studyInstanceUid)}`,
    `(0020,000e) UI ${text(f.seriesInstanceUid)}`,
    `(0020,0010) SH [1]`,
    `(0020,0011) IS [${f.seriesNumber}]`,
    `(0020,0013) IS [${f.instanceNumber}]`,
    `(0020,0032) DS [${decimal(originX)}\\${decimal(originY)}\\${decimal(z)}]`,
    `(0020,0037) DS [1\\0\\0\\0\\1\\0]`,
    `(0020,0052) UI ${text(f.frameOfReferenceUid)}`,
    `(0020,1041) DS [${decimal(z)}]`,
    `(0028,0002) US 1`,
    `(0028,0004) CS [MONOCHROME2]`,
    `(0028,0010) US ${f.rows}`,
    `(0028,0011) US ${f.columns}`,
    `(0028,0030) DS [${decimal(PIXEL_SPACING_MM)}\\${decimal(PIXEL_SPACING_MM)}]`,
    `(0028,0100) US 16`,
    `(0028,0101) US 16`,
    `(0028,0102) US 15`,
    `(0028,0103) US 0`,
    `(0028,1050) DS [40]`,
    `(0028,1051) DS [400]`,
    `(0028,1052) DS [-1024]`,
    `(0028,1053) DS [1]`,
    `(7fe0,0010) OW =${f.pixelFile}`,
    '',
  ].join('\n');
}

/**
 * Writes `count` instances of one series into `dir` (created if missing) as real Part-10 files made by
 * dcmtk's dump2dcm: explicit VR little endian, 16-bit MONOCHROME2 pixel data with a CT-like pattern,
 * unique SOP Instance UIDs, InstanceNumber 1..count and an ImagePositionPatient per slice.
 * Returns the file paths in slice order (`000001.dcm`, ...). Default size 512x512 (~0.5 MB per file).
 */
export async function generateCtSeries(
  dir: string,
  count: number,
  opts: DicomFixtureOptions = {},
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const shared = {
    sopClassUid: opts.sopClassUid ?? CT_IMAGE_STORAGE,
    studyInstanceUid: opts.studyInstanceUid ?? newUid(),
    seriesInstanceUid: opts.seriesInstanceUid ?? newUid(),
    frameOfReferenceUid: newUid(),
    modality: opts.modality ?? 'CT',
    rows: opts.rows ?? 512,
    columns: opts.columns ?? 512,
    patientName: opts.patientName ?? 'Fixture^Test',
    patientId: opts.patientId ?? 'FIXTURE-0001',
    seriesNumber: opts.seriesNumber ?? 1,
  };
  const indexes = Array.from({ length: count }, (_, i) => i);
  // dump2dcm is ~20 ms per file; running a few at once keeps 200 files to a couple of seconds.
  return mapLimit(indexes, Math.max(2, availableParallelism() * 2), async (i) => {
    const stem = String(i + 1).padStart(6, '0');
    const pixelFile = `.${stem}.pixels.raw`;
    const dumpFile = `.${stem}.dump`;
    const output = `${stem}.dcm`;
    await writeFile(join(dir, pixelFile), slicePixels(shared.rows, shared.columns, i));
    await writeFile(
      join(dir, dumpFile),
      sliceDump({ ...shared, sopInstanceUid: newUid(), instanceNumber: i + 1, pixelFile }),
    );
    try {
      // Relative names with cwd=dir: dump2dcm's '=file' syntax does not allow spaces in the path.
      await runChecked('dump2dcm', ['-q', '+te', dumpFile, output], { cwd: dir });
    } finally {
      await rm(join(dir, pixelFile), { force: true });
      await rm(join(dir, dumpFile), { force: true });
    }
    return join(dir, output);
  });
}
