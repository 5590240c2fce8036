import { ConfigError } from '@dicomflow/config';
import { patientKeywords } from '@dicomflow/dicom';

const DCM = '.dcm';

/**
 * Makes tar member names unique within one receipt. Names come from `tarMemberName` of @dicomflow/dicom (folders, then
 * the SOP Instance UID cut to 64 characters, then `.dcm`), so instances can share one: a repeated UID, or
 * UIDs equal in their first 64 characters. A repeat becomes `<name>.1.dcm`, `.2`, ...: the counter per
 * name is kept, so each instance costs O(1) (amortised: a candidate already taken by another instance's
 * own name is skipped once), where restarting at 1 for every instance was quadratic (8000 instances: 68 s
 * on the receiver's event loop).
 */
export class MemberNames {
  private readonly used = new Set<string>();
  private readonly nextSuffix = new Map<string, number>();

  /** `name` if not used yet, else the first free `<stem>.<n>.dcm`; the result is marked used. */
  unique(name: string): string {
    let result = name;
    if (this.used.has(name)) {
      const stem = name.endsWith(DCM) ? name.slice(0, -DCM.length) : name;
      let n = this.nextSuffix.get(stem) ?? 1;
      while (this.used.has(`${stem}.${n}${DCM}`)) n += 1;
      this.nextSuffix.set(stem, n + 1);
      result = `${stem}.${n}${DCM}`;
    }
    this.used.add(result);
    return result;
  }
}

/**
 * Refuses a TAR_SUBDIR that names folders by patient attributes (PatientID, PatientName, ...): member names
 * travel in messages and appear in logs, which must not hold patient data. Thrown at start.
 */
export function assertNoPatientFolders(tarSubdir: readonly string[]): void {
  const patient = patientKeywords(tarSubdir);
  if (patient.length === 0) return;
  throw new ConfigError(
    `TAR_SUBDIR: ${patient.join(', ')} ${patient.length === 1 ? 'is a patient attribute' : 'are patient attributes'}: member names travel in messages and logs, which must not hold patient data (use StudyInstanceUID, SeriesInstanceUID or another non-patient tag)`,
    { key: 'TAR_SUBDIR', source: 'configuration' },
  );
}
