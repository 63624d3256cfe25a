import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/*
 * No source file over 500 lines: a longer one does several things, and is split by reason to
 * change. Generated and data files (JSON, and the API types written by `npm run api:types`) are
 * not source and are not counted.
 */
const GENERATED = new Set(['renderer/src/api/schema.d.ts']);
const ROOT = join(import.meta.dirname, '..', '..');
const DIRS = ['server', 'node-manager', 'main', 'renderer', 'preload'];
const SOURCE = /\.(ts|tsx|css|mjs)$/;
const MAX_LINES = 500;

/**
 * Files being split right now. Each entry must still be over the limit: once it is not, the test
 * fails so that the entry is removed and the file stays under the limit from then on.
 */
const BEING_SPLIT = new Set<string>([]);

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : sourceFiles(path);
    return SOURCE.test(e.name) && !GENERATED.has(path) ? [path] : [];
  });
}

const lineCount = (path: string) => readFileSync(join(ROOT, path), 'utf8').replace(/\n$/, '').split('\n').length;

describe('source file size', () => {
  const sizes = DIRS.flatMap(sourceFiles).map((path) => ({ path, lines: lineCount(path) }));

  it('finds the sources', () => {
    expect(sizes.length).toBeGreaterThan(50);
  });

  it(`keeps every source file at ${MAX_LINES} lines or fewer`, () => {
    const over = sizes.filter((s) => s.lines > MAX_LINES && !BEING_SPLIT.has(s.path)).map((s) => `${s.path}: ${s.lines} lines`);
    expect(over).toEqual([]);
  });

  it('lists only files that are still over the limit as being split', () => {
    const done = [...BEING_SPLIT].filter((path) => !sizes.some((s) => s.path === path && s.lines > MAX_LINES));
    expect(done, `under ${MAX_LINES} lines (or gone) now: remove from BEING_SPLIT`).toEqual([]);
  });
});
