import { describe, expect, it } from 'vitest';
import { checkFlowDefinition, type FlowIssue } from './index.js';

function issuesOf(data: unknown): readonly FlowIssue[] {
  const result = checkFlowDefinition(data);
  if (result.ok) throw new Error('expected the flow to be refused');
  return result.issues;
}

const image = { docker_kwargs: { image: 'busybox' } };

describe('checkFlowDefinition: defaults', () => {
  it('fills in every default of an empty flow', () => {
    expect(checkFlowDefinition({})).toEqual({
      ok: true,
      flow: {
        name: '',
        version: '',
        priority: 0,
        triggers: [],
        models: [],
        destinations: [],
        tar_subdir: [],
        return_to_sender_on_ports: [],
      },
    });
  });

  it('fills in every default of a model', () => {
    const result = checkFlowDefinition({ models: [image] });
    expect(result.ok && result.flow.models[0]).toEqual({
      docker_kwargs: { image: 'busybox' },
      gpu: false,
      input_dir: '/input/',
      output_dir: '/output/',
      pull_before_exec: false,
      timeout: 1800,
      static_mounts: [],
      network: false,
    });
  });

  it('keeps what the file sets and does not touch its input', () => {
    const data = { name: 'ct', priority: 5, models: [{ ...image, gpu: true, timeout: 60 }] };
    const before = structuredClone(data);
    const result = checkFlowDefinition(data);
    expect(result.ok && result.flow).toMatchObject({
      name: 'ct',
      priority: 5,
      models: [{ gpu: true, timeout: 60 }],
    });
    expect(data).toEqual(before);
  });

  it('gives each flow its own default lists', () => {
    const a = checkFlowDefinition({});
    const b = checkFlowDefinition({});
    if (!a.ok || !b.ok) throw new Error('expected valid flows');
    a.flow.triggers.push({ Modality: 'CT' });
    expect(b.flow.triggers).toEqual([]);
  });
});

describe('checkFlowDefinition: accepts the forms users write', () => {
  it.each([
    ['one pattern', { triggers: [{ Modality: 'CT' }] }],
    ['a list of patterns', { triggers: [{ SeriesDescription: ['Head|Neck', '~Scout'] }] }],
    ['a (gggg,eeee) key', { triggers: [{ '(0010,0010)': 'Doe', '(0019,10aa)': 'x' }] }],
    ['a command string', { models: [{ docker_kwargs: { image: 'a', command: 'sh -c "ls /input"' } }] }],
    ['a command list', { models: [{ docker_kwargs: { image: 'a', command: ['sh', '-c', 'ls'] } }] }],
    [
      'environment as a mapping',
      { models: [{ docker_kwargs: { image: 'a', environment: { A: 1, B: 'x' } } }] },
    ],
    ['environment as a list', { models: [{ docker_kwargs: { image: 'a', environment: ['A=1'] } }] }],
    ['sizes', { models: [{ docker_kwargs: { image: 'a', shm_size: '2g', mem_limit: 1073741824 } }] }],
    ['cpu limits', { models: [{ docker_kwargs: { image: 'a', nano_cpus: 2e9, cpuset_cpus: '0-3,6' } }] }],
    ['static mounts', { models: [{ ...image, static_mounts: ['weights-v2:/model', 'atlas:/data/atlas'] }] }],
    ['destinations', { destinations: [{ host: 'pacs.local', port: 104, ae_title: 'PACS' }] }],
    ['tar_subdir', { tar_subdir: ['StudyInstanceUID', 'SeriesInstanceUID'] }],
    ['return_to_sender_on_ports', { return_to_sender_on_ports: [104, 11112] }],
  ])('%s', (_name, data) => {
    expect(checkFlowDefinition(data).ok).toBe(true);
  });
});

describe('checkFlowDefinition: refuses with the field and a reason', () => {
  it.each<[string, unknown, FlowIssue]>([
    [
      'an unknown top-level field',
      { extra: {} },
      { path: ['extra'], reason: expect.stringContaining('not a known field') as string },
    ],
    [
      'a misspelt field, with a suggestion',
      { trigger: [] },
      { path: ['trigger'], reason: expect.stringContaining('did you mean triggers?') as string },
    ],
    ['priority above 5', { priority: 6 }, { path: ['priority'], reason: 'must be <= 5' }],
    ['a negative priority', { priority: -1 }, { path: ['priority'], reason: 'must be >= 0' }],
    ['a fractional priority', { priority: 1.5 }, { path: ['priority'], reason: 'must be a whole number' }],
    [
      'a number as version',
      { version: 1.1 },
      { path: ['version'], reason: 'must be a string: put the value in quotes' },
    ],
    [
      'a trigger key that is not a keyword or tag',
      { triggers: [{ 'Study Date': 'x' }] },
      {
        path: ['triggers', 0, 'Study Date'],
        reason: 'is not a DICOM keyword (e.g. Modality) or a tag as (gggg,eeee)',
      },
    ],
    [
      'a trigger value that is a number',
      { triggers: [{ SeriesNumber: 3 }] },
      { path: ['triggers', 0, 'SeriesNumber'], reason: 'must be a regex string or a list of regex strings' },
    ],
    [
      'an empty pattern list',
      { triggers: [{ Modality: [] }] },
      { path: ['triggers', 0, 'Modality'], reason: 'must be a regex string or a list of regex strings' },
    ],
    [
      'a model without docker_kwargs',
      { models: [{}] },
      { path: ['models', 0, 'docker_kwargs'], reason: 'is required' },
    ],
    [
      'a model without image',
      { models: [{ docker_kwargs: {} }] },
      { path: ['models', 0, 'docker_kwargs', 'image'], reason: 'is required' },
    ],
    [
      'gpu as a string',
      { models: [{ ...image, gpu: 'yes' }] },
      { path: ['models', 0, 'gpu'], reason: 'must be true or false' },
    ],
    [
      'a relative input_dir',
      { models: [{ ...image, input_dir: 'input' }] },
      { path: ['models', 0, 'input_dir'], reason: 'must be an absolute path' },
    ],
    [
      'a zero timeout',
      { models: [{ ...image, timeout: 0 }] },
      { path: ['models', 0, 'timeout'], reason: 'must be >= 1' },
    ],
    [
      'a static mount without path',
      { models: [{ ...image, static_mounts: ['weights'] }] },
      { path: ['models', 0, 'static_mounts', 0], reason: expect.stringContaining('"name:/path"') as string },
    ],
    [
      'a static mount with a mode',
      { models: [{ ...image, static_mounts: ['w:/model:ro'] }] },
      { path: ['models', 0, 'static_mounts', 0], reason: expect.stringContaining('"name:/path"') as string },
    ],
    [
      'a bad size',
      { models: [{ docker_kwargs: { image: 'a', mem_limit: 'lots' } }] },
      {
        path: ['models', 0, 'docker_kwargs', 'mem_limit'],
        reason: expect.stringContaining('"512m"') as string,
      },
    ],
    [
      'a destination without port',
      { destinations: [{ host: 'h', ae_title: 'A' }] },
      { path: ['destinations', 0, 'port'], reason: 'is required' },
    ],
    [
      'an AE title over 16 characters',
      { destinations: [{ host: 'h', port: 104, ae_title: 'A'.repeat(17) }] },
      { path: ['destinations', 0, 'ae_title'], reason: 'must NOT have more than 16 characters' },
    ],
    [
      'a port out of range',
      { return_to_sender_on_ports: [70000] },
      { path: ['return_to_sender_on_ports', 0], reason: 'must be <= 65535' },
    ],
    [
      'a tar_subdir entry that is not a keyword',
      { tar_subdir: ['Study/UID'] },
      { path: ['tar_subdir', 0], reason: expect.stringContaining('DICOM keyword') as string },
    ],
    [
      'a flow that is a list',
      [],
      { path: [], reason: expect.stringContaining('must be a mapping') as string },
    ],
  ])('%s', (_name, data, issue) => {
    expect(issuesOf(data)).toContainEqual(issue);
  });

  it('reports every issue at once', () => {
    const paths = issuesOf({ priority: 9, models: [{ gpu: 1 }], bogus: 1 }).map((issue) => issue.path);
    expect(paths).toEqual(
      expect.arrayContaining([['priority'], ['bogus'], ['models', 0, 'docker_kwargs'], ['models', 0, 'gpu']]),
    );
  });
});

describe('checkFlowDefinition: docker_kwargs allow-list', () => {
  it.each([
    ['privileged', true, 'containers never run privileged'],
    ['network_mode', 'host', 'network'],
    ['pid_mode', 'host', 'namespace'],
    ['ipc_mode', 'host', 'namespace'],
    ['binds', ['/:/host'], 'host paths'],
    ['volumes', { '/etc': { bind: '/x' } }, 'host paths'],
    ['mounts', [], 'host paths'],
    ['devices', ['/dev/sda'], 'gpu: true'],
    ['device_requests', [], 'gpu: true'],
    ['cap_add', ['SYS_ADMIN'], 'capabilities'],
    ['security_opt', ['seccomp=unconfined'], 'never relaxed'],
    ['userns_mode', 'host', 'namespace'],
  ])('refuses %s, naming the key', (key, value, because) => {
    const issues = issuesOf({ models: [{ docker_kwargs: { image: 'a', [key]: value } }] });
    expect(issues).toEqual([
      { path: ['models', 0, 'docker_kwargs', key], reason: expect.stringContaining(because) as string },
    ]);
    expect(issues[0]?.reason).toMatch(/^is not allowed: /);
  });

  it('refuses an unknown key and lists the allowed ones', () => {
    const [issue] = issuesOf({ models: [{ docker_kwargs: { image: 'a', stdin_open: true } }] });
    expect(issue?.path).toEqual(['models', 0, 'docker_kwargs', 'stdin_open']);
    expect(issue?.reason).toMatch(
      /^is not an allowed docker_kwargs key \(allowed: image, command, .*cpuset_cpus\)$/,
    );
  });
});
