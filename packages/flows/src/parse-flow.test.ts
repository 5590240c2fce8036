import { describe, expect, it } from 'vitest';
import { formatProblem, parseFlow, type FlowProblem } from './index.js';

function problemsOf(text: string): string[] {
  const result = parseFlow(text, 'flow.yaml');
  if (result.ok) throw new Error('expected problems');
  return result.problems.map(formatProblem);
}

const lines = (...rows: string[]): string => `${rows.join('\n')}\n`;

describe('parseFlow: valid files', () => {
  it('returns the flow with defaults filled in', () => {
    const result = parseFlow(
      lines(
        'name: CT copy',
        "version: '1.0'",
        'triggers:',
        '  - Modality: CT',
        '    "(0019,10A0)": [SITE, "~TEST"]',
        'models:',
        '  - docker_kwargs: { image: busybox }',
      ),
      'ct.yaml',
    );
    expect(result).toEqual({
      ok: true,
      flow: {
        name: 'CT copy',
        version: '1.0',
        priority: 0,
        triggers: [{ Modality: 'CT', '(0019,10A0)': ['SITE', '~TEST'] }],
        models: [
          {
            docker_kwargs: { image: 'busybox' },
            gpu: false,
            input_dir: '/input/',
            output_dir: '/output/',
            pull_before_exec: false,
            timeout: 1800,
            static_mounts: [],
            network: false,
          },
        ],
        destinations: [],
        tar_subdir: [],
        return_to_sender_on_ports: [],
      },
    });
  });

  it('takes DICOM nodes and DICOMweb servers as destinations', () => {
    const result = parseFlow(
      lines(
        'destinations:',
        '  - { host: pacs, port: 104, ae_title: PACS }',
        '  - url: https://pacs.example/dicom-web',
        '    token_file: pacs-token',
        '  - url: http://orthanc:8042/dicom-web',
      ),
      'web.yaml',
    );
    expect(result.ok && result.flow.destinations).toEqual([
      { host: 'pacs', port: 104, ae_title: 'PACS' },
      { url: 'https://pacs.example/dicom-web', token_file: 'pacs-token' },
      { url: 'http://orthanc:8042/dicom-web' },
    ]);
  });

  it('reads YAML 1.2: yes stays a string, so it is not a boolean', () => {
    expect(problemsOf(lines('models:', '  - docker_kwargs: { image: a }', '    gpu: yes'))).toEqual([
      'flow.yaml:3: models[0].gpu: must be true or false',
    ]);
  });
});

describe('parseFlow: problems name the file, line and field', () => {
  it.each<[string, string, string[]]>([
    ['an empty file', '', ['flow.yaml:1: (flow): the file is empty']],
    ['a file of comments', '# nothing yet\n', ['flow.yaml:1: (flow): the file is empty']],
    [
      'a YAML syntax error',
      lines('name: a', 'triggers: [', '  - x: y'),
      [
        'flow.yaml:3: (yaml): Block collections are not allowed within flow collections',
        'flow.yaml:4: (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]',
      ],
    ],
    [
      'a duplicate key',
      lines('name: a', 'priority: 1', 'name: b'),
      ['flow.yaml:3: (yaml): Map keys must be unique'],
    ],
    [
      'two YAML documents',
      lines('name: a', '---', 'name: b'),
      ['flow.yaml:2: (yaml): a flow file holds one flow: remove the "---" and what follows'],
    ],
    [
      'a list instead of a mapping',
      lines('- name: a'),
      ['flow.yaml:1: (flow): a flow file must be a mapping of fields (name, triggers, models, ...)'],
    ],
    [
      'an unknown field',
      lines('name: a', '', 'extra:', '  foo: bar'),
      [
        'flow.yaml:3: extra: is not a known field (known: name, version, priority, triggers, models, destinations, tar_subdir, return_to_sender_on_ports)',
      ],
    ],
    [
      'a refused docker key',
      lines('models:', '  - docker_kwargs:', '      image: a', '      privileged: true'),
      ['flow.yaml:4: models[0].docker_kwargs.privileged: is not allowed: containers never run privileged'],
    ],
    [
      'a missing required field, at its parent',
      lines('models:', '  - gpu: true', '    docker_kwargs:', '      command: ls'),
      ['flow.yaml:3: models[0].docker_kwargs.image: is required'],
    ],
    [
      'a pattern that does not compile',
      lines('triggers:', '  - SeriesDescription:', '      - Head', '      - "(Neck"'),
      [
        'flow.yaml:4: triggers[0].SeriesDescription[1]: is not a valid regular expression (missing closing ): `(Neck`)',
      ],
    ],
    [
      'an exclusion that does not compile',
      lines('triggers:', '  - Modality: "~[CT"'),
      ['flow.yaml:2: triggers[0].Modality: is not a valid regular expression (missing closing ]: `[CT`)'],
    ],
    [
      'an unsupported inline flag',
      lines('triggers:', '  - Modality: "(?x)CT"'),
      [
        'flow.yaml:2: triggers[0].Modality: is not a valid regular expression (invalid or unsupported Perl syntax: `(?x`)',
      ],
    ],
    [
      'a look-ahead, which needs backtracking',
      lines('triggers:', '  - BodyPartExamined: "^(?!HEAD)"'),
      [
        'flow.yaml:2: triggers[0].BodyPartExamined: is not a valid regular expression (invalid or unsupported Perl syntax: `(?!`; look-around and back-references need backtracking, which RE2 leaves out so that matching stays linear)',
      ],
    ],
    [
      'a bad pattern under a (gggg,eeee) key',
      lines('triggers:', '  - "(0010,0010)": "*"'),
      [
        'flow.yaml:2: triggers[0]["(0010,0010)"]: is not a valid regular expression (missing argument to repetition operator: `*`)',
      ],
    ],
    [
      'an unknown keyword, with the spelling it probably meant',
      lines('triggers:', '  - modality: CT'),
      ['flow.yaml:2: triggers[0].modality: is not a DICOM keyword (did you mean Modality?)'],
    ],
    [
      'a key that is neither keyword nor tag',
      lines('triggers:', '  - "0010,0010": x'),
      [
        'flow.yaml:2: triggers[0]["0010,0010"]: is not a DICOM keyword (e.g. Modality) or a tag as (gggg,eeee)',
      ],
    ],
    [
      'a destination with the fields of a DICOM node and of a DICOMweb server',
      lines(
        'destinations:',
        '  - url: http://pacs/dicom-web',
        '    host: pacs',
        '    port: 104',
        '    ae_title: P',
      ),
      [
        'flow.yaml:2: destinations[0]: must be a DICOM node (host, port, ae_title) or a DICOMweb server (url, optionally token or token_file), not both',
      ],
    ],
    [
      'a destination that is neither',
      lines('destinations:', '  - hostname: pacs'),
      [
        'flow.yaml:2: destinations[0]: must be a DICOM node (host, port, ae_title) or a DICOMweb server (url, optionally token or token_file), not both',
      ],
    ],
    [
      'a DICOMweb destination with a token and a token file',
      lines('destinations:', '  - url: https://pacs/dicom-web', '    token: abc', '    token_file: pacs'),
      ['flow.yaml:2: destinations[0]: give token or token_file, not both'],
    ],
    [
      'a DICOMweb url with credentials, at its line',
      lines(
        'name: a',
        'destinations:',
        '  - host: pacs',
        '    port: 104',
        '    ae_title: P',
        '  - url: https://u:p@pacs/dicom-web',
      ),
      [
        'flow.yaml:6: destinations[1].url: must be an http:// or https:// URL without user name or password (put a bearer token in token or token_file)',
      ],
    ],
    [
      'an unknown tar_subdir keyword',
      lines('tar_subdir:', '  - StudyInstanceUID', '  - SeriesUID'),
      ['flow.yaml:3: tar_subdir[1]: is not a DICOM keyword'],
    ],
    [
      'a patient attribute in tar_subdir',
      lines('tar_subdir:', '  - PatientID', '  - SeriesInstanceUID'),
      [
        'flow.yaml:2: tar_subdir[0]: is a patient attribute: folder names travel in messages and logs, which must not hold patient data (use StudyInstanceUID, SeriesInstanceUID or another non-patient tag)',
      ],
    ],
  ])('%s', (_name, text, expected) => {
    expect(problemsOf(text)).toEqual(expected);
  });

  it('reports every problem of a file at once, in line order', () => {
    const problems = problemsOf(
      lines(
        'priority: 7',
        'triggers:',
        '  - Modality: "("',
        '    Modalty: CT',
        'models:',
        '  - docker_kwargs: { image: a, network_mode: host }',
      ),
    );
    expect(problems).toEqual([
      'flow.yaml:1: priority: must be <= 5',
      'flow.yaml:3: triggers[0].Modality: is not a valid regular expression (missing closing ): `(`)',
      'flow.yaml:4: triggers[0].Modalty: is not a DICOM keyword',
      expect.stringMatching(
        /^flow\.yaml:6: models\[0\]\.docker_kwargs\.network_mode: is not allowed: /,
      ) as string,
    ]);
  });

  it('refuses alias expansion beyond a flow file size', () => {
    const rows = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 8; i++)
      rows.push(
        `${'bcdefghi'[i] ?? 'z'}: &${'bcdefghi'[i] ?? 'z'} [${Array(10)
          .fill(`*${'abcdefgh'[i] ?? 'a'}`)
          .join(', ')}]`,
      );
    const result = parseFlow(lines(...rows), 'bomb.yaml');
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.problems.map((p: FlowProblem) => p.field)).toEqual(['(yaml)']);
  });
});
