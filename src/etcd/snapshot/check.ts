import { BoltCorruption, NO_FREELIST, PAGE_HEADER_SIZE, PageFlag, pageTypeName, toSafeNumber, type PageHeader } from './layout.js';
import type { BoltMeta } from './meta.js';
import type { PageFile } from './pages.js';

const FREED = 1;
const REACHABLE = 2;
const MAX_PROBLEMS = 20;

/**
 * The page-accounting half of bbolt's Tx.Check: every page below the high-water mark is
 * referenced exactly once or is on the freelist, never both. One byte per page of state.
 */
export class PageChecker {
  private readonly state: Uint8Array;
  /** Problems found, in bbolt's wording where bbolt has one. */
  readonly problems: string[] = [];
  private freelistSynced = false;

  constructor(private readonly meta: BoltMeta) {
    this.state = new Uint8Array(meta.pgid);
    this.state[0] = REACHABLE;
    if (meta.pgid > 1) this.state[1] = REACHABLE;
  }

  /** Reads the persisted freelist (if any) and marks its own pages reachable and its ids freed. */
  async loadFreelist(file: PageFile): Promise<void> {
    if (this.meta.freelist === NO_FREELIST) return; // bbolt rebuilds it from unreachable pages: nothing to check
    const id = toSafeNumber(this.meta.freelist, 'freelist page id');
    const page = await file.readPage(id);
    if (!(page.header.flags & PageFlag.freelist)) {
      throw new BoltCorruption(`page ${id}: invalid type: ${pageTypeName(page.header.flags)} where the freelist should be`);
    }
    this.freelistSynced = true;
    this.reach(page.header);
    let count = page.header.count;
    let at = PAGE_HEADER_SIZE;
    if (count === 0xffff) {
      count = toSafeNumber(page.buf.readBigUInt64LE(at), 'freelist count');
      at += 8;
    }
    if (at + count * 8 > page.buf.length) throw new BoltCorruption(`page ${id}: freelist of ${count} ids runs past the page`);
    for (let i = 0; i < count; i++) {
      const free = toSafeNumber(page.buf.readBigUInt64LE(at + i * 8), 'free page id');
      if (free >= this.state.length) this.report(`page ${free}: freed page past the high-water mark ${this.state.length}`);
      else if (this.state[free] & FREED) this.report(`page ${free}: already freed`);
      else this.state[free] |= FREED;
    }
    file.release(page);
  }

  /** Observer for PageFile: records a branch or leaf page (and its overflow) as referenced. */
  readonly onPage = (header: PageHeader): void => {
    if (this.state[header.id] & FREED) this.report(`page ${header.id}: reachable freed`);
    this.reach(header);
  };

  /** Reports pages neither referenced nor free (only meaningful when the freelist is persisted). */
  finish(): string[] {
    if (this.freelistSynced) {
      for (let i = 0; i < this.state.length; i++) {
        if (this.state[i] === 0) this.report(`page ${i}: unreachable unfreed`);
      }
    }
    return this.problems;
  }

  private reach(header: PageHeader): void {
    for (let i = 0; i <= header.overflow; i++) {
      const id = header.id + i;
      if (this.state[id] & REACHABLE) this.report(`page ${id}: multiple references`);
      this.state[id] |= REACHABLE;
    }
  }

  private report(problem: string): void {
    if (this.problems.length < MAX_PROBLEMS) this.problems.push(problem);
  }
}

