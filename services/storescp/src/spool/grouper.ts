import { randomUUID } from 'node:crypto';
import type { InstanceInfo } from '@dicomflow/dicom';
import type { Logger, TraceContext } from '@dicomflow/runtime';
import { expectedInstanceCount, type SealReason } from './group-completion.js';
import type { GroupManifest, Grouping, RecoveredGroup, Spool } from './spool.js';

/** Who sent an instance, and over which association. */
export interface InstanceOrigin {
  readonly associationId: string;
  readonly callingAeTitle: string;
  readonly calledAeTitle: string;
  readonly callingHost: string;
  /** The association's (or STOW request's) span: the receipt's trace continues from it. */
  readonly trace?: TraceContext | undefined;
}

/** A group that takes no more instances and can be published. */
export interface SealedGroup {
  readonly manifest: GroupManifest;
  readonly dir: string;
  /** Where the receipt's span goes: under the span of the association that opened the group. */
  readonly trace?: TraceContext | undefined;
}

class OpenGroup {
  pending = 0;
  timer: NodeJS.Timeout | undefined;
  /** Distinct SOP Instance UIDs filed (only counted when completion by count is on). */
  readonly members = new Set<string>();
  /** The largest count any member announced; the group completes when it holds that many. */
  expected: number | undefined;
  private waiters: Array<() => void> = [];

  constructor(
    readonly manifest: GroupManifest,
    readonly dir: Promise<string>,
    readonly trace?: TraceContext,
  ) {}

  done(): void {
    this.pending -= 1;
    if (this.pending === 0) for (const wake of this.waiters.splice(0)) wake();
  }

  async drained(): Promise<void> {
    if (this.pending > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

const UNSAFE = /[^A-Za-z0-9._-]/g;

/**
 * Groups open at once, by default. Each holds a folder, a timer and some memory, and in `study` and
 * `series` grouping a sender chooses how many there are (one per distinct UID): without a bound, one
 * association sending instances of ever new studies would make them without end.
 */
export const MAX_OPEN_GROUPS = 10_000;

/** A new group was needed while {@link MAX_OPEN_GROUPS} (or the configured bound) are open. */
export class TooManyOpenGroupsError extends Error {
  constructor(readonly limit: number) {
    super(`${limit} groups are open; no new group until some complete`);
    this.name = 'TooManyOpenGroupsError';
  }
}

/** How groups are formed and when they complete. */
export interface GroupingRules {
  readonly grouping: Grouping;
  /** Quiet period after which a study or series group completes. */
  readonly groupTimeoutMs: number;
  /**
   * Tags whose integer value says how many distinct instances the group will hold (the first present
   * wins; the largest announced by any member counts). Reaching it completes the group at once. Empty: the
   * quiet period only.
   */
  readonly countTags?: readonly string[];
  /** Bound on open groups (default {@link MAX_OPEN_GROUPS}). */
  readonly maxOpenGroups?: number;
  /** Told each time a group completes, and why (for metrics). */
  readonly onComplete?: (reason: SealReason) => void;
}

/**
 * Puts received instances into groups and decides when a group is complete: at the end of its association
 * (`association`); for a study or series, as soon as it holds the number of distinct instances its count
 * tags announce, else after `groupTimeoutMs` without a new instance.
 */
export class Grouper {
  private readonly open = new Map<string, OpenGroup>();
  private readonly sealing = new Set<Promise<void>>();
  private closed = false;
  private readonly grouping: Grouping;
  private readonly countTags: readonly string[];
  private readonly maxOpenGroups: number;

  constructor(
    private readonly spool: Spool,
    private readonly rules: GroupingRules,
    private readonly onSealed: (group: SealedGroup) => void,
    private readonly logger: Logger,
  ) {
    this.grouping = rules.grouping;
    this.countTags = rules.grouping === 'association' ? [] : (rules.countTags ?? []);
    this.maxOpenGroups = rules.maxOpenGroups ?? MAX_OPEN_GROUPS;
  }

  /**
   * Files a received instance in its group. When this resolves, the instance is safe to acknowledge.
   * Throws {@link TooManyOpenGroupsError} when it needs a new group and the bound is reached.
   */
  async admit(origin: InstanceOrigin, info: InstanceInfo, incomingPath: string): Promise<void> {
    const key = this.keyOf(origin, info);
    let group = this.open.get(key);
    if (!group) {
      if (this.open.size >= this.maxOpenGroups) throw new TooManyOpenGroupsError(this.maxOpenGroups);
      const manifest: GroupManifest = {
        receiptId: randomUUID(),
        grouping: this.grouping,
        key,
        callingAeTitle: origin.callingAeTitle,
        calledAeTitle: origin.calledAeTitle,
        callingHost: origin.callingHost,
        createdAt: new Date().toISOString(),
      };
      const created = new OpenGroup(manifest, this.spool.createGroup(manifest), origin.trace);
      group = created;
      this.open.set(key, created);
      created.dir.catch(() => {
        if (this.open.get(key) === created) this.open.delete(key);
      });
    }
    group.pending += 1;
    try {
      const dir = await group.dir;
      await this.spool.admit(incomingPath, dir, `${info.sopInstanceUid.replace(UNSAFE, '_')}.dcm`, info);
    } finally {
      group.done();
    }
    if (this.grouping === 'association') return;
    if (this.reachedCount(group, info)) {
      // Sealed only if it is still the open group of its key: a seal under way already took it out.
      if (!this.closed && this.open.get(key) === group) this.trackSeal(this.seal(key, 'count'));
      return;
    }
    this.armTimer(key, group);
  }

  /** The association ended (released, aborted or dropped): in `association` mode its group is complete. */
  async endAssociation(associationId: string): Promise<void> {
    if (this.grouping !== 'association') return;
    await this.seal(associationId, 'association');
  }

  /** Takes over the groups a previous process left in the spool. */
  restore(groups: readonly RecoveredGroup[]): void {
    for (const { manifest, dir, sealed } of groups) {
      if (sealed || manifest.grouping === 'association' || manifest.grouping !== this.grouping) {
        // Its association is gone (or the grouping changed): nothing more can join it.
        this.trackSeal(this.sealRecovered(manifest, dir, sealed));
        continue;
      }
      const group = new OpenGroup(manifest, Promise.resolve(dir));
      this.open.set(manifest.key, group);
      this.armTimer(manifest.key, group);
    }
  }

  /** Stops timers and waits for admissions and seals under way; open groups stay in the spool for next time. */
  async close(): Promise<void> {
    this.closed = true;
    for (const group of this.open.values()) clearTimeout(group.timer);
    await Promise.allSettled([...this.open.values()].map((g) => g.drained()));
    await Promise.allSettled([...this.sealing]);
  }

  /** Groups currently open (for readiness details and tests). */
  openGroupCount(): number {
    return this.open.size;
  }

  private keyOf(origin: InstanceOrigin, info: InstanceInfo): string {
    switch (this.grouping) {
      case 'association':
        return origin.associationId;
      case 'study':
        return info.studyInstanceUid;
      case 'series':
        return info.seriesInstanceUid;
    }
  }

  /** Counts `info` in its group; true once the group holds every instance its members announced. */
  private reachedCount(group: OpenGroup, info: InstanceInfo): boolean {
    if (this.countTags.length === 0) return false;
    group.members.add(info.sopInstanceUid);
    const announced = expectedInstanceCount(info, this.countTags);
    if (announced !== undefined) group.expected = Math.max(group.expected ?? 0, announced);
    return group.expected !== undefined && group.members.size >= group.expected;
  }

  private armTimer(key: string, group: OpenGroup): void {
    clearTimeout(group.timer);
    if (this.closed) return;
    group.timer = setTimeout(() => {
      this.trackSeal(this.seal(key, 'timeout'));
    }, this.rules.groupTimeoutMs);
  }

  private async seal(key: string, reason: SealReason): Promise<void> {
    const group = this.open.get(key);
    if (!group) return;
    this.open.delete(key);
    clearTimeout(group.timer);
    await group.drained();
    let dir: string;
    try {
      dir = await group.dir;
    } catch {
      return; // the folder was never created, so no instance is in it
    }
    await this.spool.seal(dir);
    this.rules.onComplete?.(reason);
    this.onSealed({ manifest: group.manifest, dir, trace: group.trace });
  }

  private async sealRecovered(manifest: GroupManifest, dir: string, sealed: boolean): Promise<void> {
    if (!sealed) await this.spool.seal(dir);
    this.rules.onComplete?.('recovered');
    this.onSealed({ manifest, dir });
  }

  private trackSeal(work: Promise<void>): void {
    const tracked = work.catch((err: unknown) => {
      this.logger.error({ err }, 'sealing a group failed; it stays in the spool for the next start');
    });
    this.sealing.add(tracked);
    void tracked.finally(() => this.sealing.delete(tracked));
  }
}
