import { describe, expect, it } from 'vitest';
import { tarMemberName } from '@dicomflow/dicom';
import { assertNoPatientFolders, MemberNames } from './member-names.js';

describe('MemberNames', () => {
  it('names 8000 instances whose UIDs share their first 64 characters, distinctly (was quadratic: 68 s)', () => {
    const prefix = `1.2.826.0.1.3680043.8.498.${'1'.repeat(64)}`;
    const names = new MemberNames();
    const members = Array.from({ length: 8000 }, (_, i) =>
      names.unique(tarMemberName([], {}, `${prefix}.${i}`)),
    );
    const base = prefix.slice(0, 64);
    expect(new Set(members).size).toBe(8000);
    expect(members.slice(0, 3)).toEqual([`${base}.dcm`, `${base}.1.dcm`, `${base}.2.dcm`]);
    expect(members[7999]).toBe(`${base}.7999.dcm`);
  });

  it('numbers a repeated name after the whole UID, never cutting it', () => {
    const names = new MemberNames();
    const uid = '1.2.826.0.1.3680043.8.498.111';
    // The old rename replaced the UID's last component: `...498.111.dcm` became `...498.1.dcm`.
    expect([names.unique(`${uid}.dcm`), names.unique(`${uid}.dcm`), names.unique(`${uid}.dcm`)]).toEqual([
      `${uid}.dcm`,
      `${uid}.1.dcm`,
      `${uid}.2.dcm`,
    ]);
  });

  it('skips a number another instance already has as its own name', () => {
    const names = new MemberNames();
    expect(names.unique('s/1.2.3.dcm')).toBe('s/1.2.3.dcm');
    expect(names.unique('s/1.2.3.1.dcm')).toBe('s/1.2.3.1.dcm'); // a real UID 1.2.3.1
    expect(names.unique('s/1.2.3.dcm')).toBe('s/1.2.3.2.dcm');
    expect(names.unique('s/1.2.3.1.dcm')).toBe('s/1.2.3.1.1.dcm');
    expect(names.unique('t/1.2.3.dcm')).toBe('t/1.2.3.dcm'); // another folder
  });
});

describe('assertNoPatientFolders', () => {
  it('refuses patient attributes in TAR_SUBDIR at start, naming them, and takes the others', () => {
    expect(() => {
      assertNoPatientFolders(['StudyInstanceUID', 'PatientID', 'PatientBirthDate']);
    }).toThrow(
      /^TAR_SUBDIR: PatientID, PatientBirthDate are patient attributes: member names travel in messages/,
    );
    expect(() => {
      assertNoPatientFolders(['OtherPatientIDs']);
    }).toThrow(/TAR_SUBDIR: OtherPatientIDs is a patient attribute/);
    expect(() => {
      assertNoPatientFolders(['StudyInstanceUID', 'SeriesInstanceUID', 'Modality']);
    }).not.toThrow();
  });
});
