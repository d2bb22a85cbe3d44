// Copyright (c) cs3sync contributors. Apache-2.0.
/**
 * A notebook conflict's "Compare": nbdime's diff (served as data by
 * `GET journal/<id>/compare`, cs3sync/merge.py) rendered cell by cell — cells
 * only on the storage, cells only in yours, changed cells with their source
 * line diff and a note of what else changed (outputs, execution count,
 * metadata). Rendered here with our own small component rather than nbdime's
 * web widgets (docs/decisions.md): the diff is plain JSON, and reading it takes
 * a page of code, not nbdime's front end.
 *
 * nbdime's diff format (nbdime/diff_format.py): a list of entries, each
 * `addrange {key, valuelist}` / `removerange {key, length}` / `patch {key,
 * diff}` on lists and strings, `add`/`replace {key, value}` / `remove {key}` /
 * `patch` on objects. A cell's source is diffed line by line, a changed line
 * character by character.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

/** One entry of an nbdime diff. */
export type DiffEntry =
  | { op: 'addrange'; key: number; valuelist: unknown[] | string }
  | { op: 'removerange'; key: number; length: number }
  | { op: 'patch'; key: number | string; diff: DiffEntry[] }
  | { op: 'add' | 'replace'; key: number | string; value: unknown }
  | { op: 'remove'; key: number | string };

/** A notebook cell as nbformat stores it (the parts the view reads). */
export interface ICell {
  cell_type: string;
  source: string | string[];
  [key: string]: unknown;
}

/** The answer of `GET journal/<id>/compare`. */
export interface INotebookCompare {
  /** The storage's version of the notebook (the diff's base). */
  base: { cells: ICell[]; [key: string]: unknown };
  /** nbdime's diff from the storage's version to yours (the conflicted copy). */
  diff: DiffEntry[];
  api_path: string | null;
  conflict_api_path: string | null;
}

/** A line of a diff: in both versions, only on the storage ("theirs") or only in yours ("mine"). */
export interface IDiffRow {
  kind: 'same' | 'theirs' | 'mine';
  text: string;
}

/** What else changed in a cell besides its source. */
export type CellNote =
  'outputs' | 'execution_count' | 'metadata' | 'cell_type' | 'attachments';

/** One cell of the comparison. */
export interface ICellChange {
  /** added: only in yours; removed: only on the storage; modified: changed; unchanged. */
  kind: 'added' | 'removed' | 'modified' | 'unchanged';
  cellType: string;
  /** 1-based position in the storage's version (null: not there). */
  theirs: number | null;
  /** 1-based position in yours (null: not there). */
  mine: number | null;
  rows: IDiffRow[];
  notes: CellNote[];
}

const NOTES: CellNote[] = [
  'outputs',
  'execution_count',
  'metadata',
  'cell_type',
  'attachments'
];

/** A cell's source as one string (nbformat allows a list of lines on disk). */
export function sourceText(source: string | string[] | undefined): string {
  return Array.isArray(source) ? source.join('') : (source ?? '');
}

/** Lines with their line ends, as Python's `splitlines(True)` (nbdime's line keys index these). */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Entries of a list diff in the order they apply: at one key, removals, then insertions, then a patch. */
function ordered(diff: DiffEntry[]): DiffEntry[] {
  const rank = { removerange: 0, addrange: 1, patch: 2 } as Record<
    string,
    number
  >;
  return [...diff].sort(
    (a, b) =>
      Number(a.key) - Number(b.key) || (rank[a.op] ?? 3) - (rank[b.op] ?? 3)
  );
}

/** nbdime's `patch_list` for a string patched character by character (one changed line). */
export function patchLine(line: string, diff: DiffEntry[]): string {
  const chars = Array.from(line);
  let out = '';
  let take = 0;
  for (const e of ordered(diff)) {
    const key = Number(e.key);
    out += chars.slice(take, Math.max(take, key)).join('');
    take = Math.max(take, key);
    if (e.op === 'addrange') {
      out += Array.isArray(e.valuelist)
        ? e.valuelist.join('')
        : String(e.valuelist);
    } else if (e.op === 'removerange') {
      take = Math.max(take, key + e.length);
    } else if (e.op === 'patch') {
      out += patchLine(chars[key] ?? '', e.diff);
      take = Math.max(take, key + 1);
    }
  }
  return out + chars.slice(take).join('');
}

/** Rows of text lines, without their line ends. */
function rowsOf(lines: string[], kind: IDiffRow['kind']): IDiffRow[] {
  return lines.map(line => ({ kind, text: line.replace(/\r?\n$/, '') }));
}

/** A cell source's line diff from nbdime's line-based source diff. */
export function sourceRows(
  source: string | string[] | undefined,
  diff: DiffEntry[] | null
): IDiffRow[] {
  const lines = splitLines(sourceText(source));
  if (!diff) {
    return rowsOf(lines, 'same');
  }
  const rows: IDiffRow[] = [];
  let take = 0;
  for (const e of ordered(diff)) {
    const key = Number(e.key);
    rows.push(...rowsOf(lines.slice(take, Math.max(take, key)), 'same'));
    take = Math.max(take, key);
    if (e.op === 'addrange') {
      const added = Array.isArray(e.valuelist)
        ? e.valuelist.map(String)
        : splitLines(e.valuelist);
      rows.push(...rowsOf(added, 'mine'));
    } else if (e.op === 'removerange') {
      rows.push(...rowsOf(lines.slice(key, key + e.length), 'theirs'));
      take = Math.max(take, key + e.length);
    } else if (e.op === 'patch') {
      const old = lines[key] ?? '';
      rows.push(...rowsOf([old], 'theirs'));
      // A patched line can gain a line end (a line added after the last one): split it.
      rows.push(...rowsOf(splitLines(patchLine(old, e.diff)), 'mine'));
      take = Math.max(take, key + 1);
    }
  }
  return rows.concat(rowsOf(lines.slice(take), 'same'));
}

/** The entry of `diff` for an object key, if any. */
function entryFor(diff: DiffEntry[], key: string): DiffEntry | undefined {
  return diff.find(e => e.key === key);
}

/** A changed cell: its source rows, and what else changed. */
function modifiedCell(
  cell: ICell,
  diff: DiffEntry[],
  theirs: number,
  mine: number
): ICellChange {
  const source = entryFor(diff, 'source');
  let rows: IDiffRow[];
  if (source?.op === 'patch') {
    rows = sourceRows(cell.source, source.diff);
  } else if (source?.op === 'replace' || source?.op === 'add') {
    rows = [
      ...rowsOf(splitLines(sourceText(cell.source)), 'theirs'),
      ...rowsOf(splitLines(sourceText(source.value as string)), 'mine')
    ];
  } else {
    rows = sourceRows(cell.source, null);
  }
  const typeChange = entryFor(diff, 'cell_type');
  return {
    kind: 'modified',
    cellType:
      typeChange && 'value' in typeChange
        ? String(typeChange.value)
        : cell.cell_type,
    theirs,
    mine,
    rows,
    notes: NOTES.filter(note => entryFor(diff, note) !== undefined)
  };
}

/** A cell that is only on one side: all its lines are that side's. */
function wholeCell(
  cell: ICell,
  kind: 'added' | 'removed' | 'unchanged',
  theirs: number | null,
  mine: number | null
): ICellChange {
  const rowKind =
    kind === 'added' ? 'mine' : kind === 'removed' ? 'theirs' : 'same';
  return {
    kind,
    cellType: cell.cell_type,
    theirs,
    mine,
    rows: rowsOf(splitLines(sourceText(cell.source)), rowKind),
    notes: []
  };
}

/** The comparison cell by cell, in the order of yours (cells only on the storage where they were). */
export function cellChanges(
  base: { cells: ICell[] },
  diff: DiffEntry[]
): ICellChange[] {
  const cells = base.cells ?? [];
  const cellsEntry = entryFor(diff, 'cells');
  const cellsDiff = cellsEntry?.op === 'patch' ? cellsEntry.diff : [];
  const changes: ICellChange[] = [];
  let take = 0; // next cell of the storage's version not yet shown
  let mine = 0; // cells of yours shown so far
  const unchanged = (upTo: number) => {
    for (; take < upTo; take++) {
      changes.push(wholeCell(cells[take], 'unchanged', take + 1, ++mine));
    }
  };
  for (const e of ordered(cellsDiff)) {
    const key = Number(e.key);
    unchanged(Math.min(key, cells.length));
    if (e.op === 'addrange') {
      for (const cell of e.valuelist as ICell[]) {
        changes.push(wholeCell(cell, 'added', null, ++mine));
      }
    } else if (e.op === 'removerange') {
      for (let i = key; i < Math.min(key + e.length, cells.length); i++) {
        changes.push(wholeCell(cells[i], 'removed', i + 1, null));
      }
      take = Math.max(take, key + e.length);
    } else if (e.op === 'patch' && cells[key]) {
      changes.push(modifiedCell(cells[key], e.diff, key + 1, ++mine));
      take = Math.max(take, key + 1);
    }
  }
  unchanged(cells.length);
  return changes;
}

/** Whether the notebook's own metadata differs (shown as one note above the cells). */
export function notebookMetadataChanged(diff: DiffEntry[]): boolean {
  return entryFor(diff, 'metadata') !== undefined;
}

/** The heading of one cell of the comparison, in the user's words. */
export function cellTitle(
  change: ICellChange,
  trans: TranslationBundle
): string {
  switch (change.kind) {
    case 'added':
      return trans.__(
        'Cell %1 (%2): only in yours',
        change.mine ?? '',
        change.cellType
      );
    case 'removed':
      return trans.__(
        'Cell %1 (%2): only on the storage',
        change.theirs ?? '',
        change.cellType
      );
    case 'modified':
      return trans.__(
        'Cell %1 (%2): changed',
        change.mine ?? '',
        change.cellType
      );
    default:
      return trans.__('Cell %1 (%2)', change.mine ?? '', change.cellType);
  }
}

/** "Outputs changed · Execution count changed", or ''. */
export function notesText(notes: CellNote[], trans: TranslationBundle): string {
  const labels: Record<CellNote, string> = {
    outputs: trans.__('outputs changed'),
    execution_count: trans.__('execution count changed'),
    metadata: trans.__('metadata changed'),
    cell_type: trans.__('cell type changed'),
    attachments: trans.__('attachments changed')
  };
  return notes.map(note => labels[note]).join(' · ');
}

/** Diff rows as the line diff shows them: `+` yours, `−` the storage's. */
export function DiffLines(props: { rows: IDiffRow[] }): React.ReactElement {
  return (
    <pre className="jp-cs3sync-diff" role="table">
      {props.rows.map((row, i) => (
        <div
          key={i}
          role="row"
          className={`jp-cs3sync-diff-${row.kind}`}
          data-kind={row.kind}
        >
          {row.kind === 'mine' ? '+ ' : row.kind === 'theirs' ? '− ' : '  '}
          {row.text}
        </div>
      ))}
    </pre>
  );
}

/** Runs of unchanged cells are folded into one line; changed cells are shown whole. */
function groups(changes: ICellChange[]): ICellChange[][] {
  const out: ICellChange[][] = [];
  for (const change of changes) {
    const last = out[out.length - 1];
    if (change.kind === 'unchanged' && last && last[0].kind === 'unchanged') {
      last.push(change);
    } else {
      out.push([change]);
    }
  }
  return out;
}

/** The notebook comparison: a legend, then each cell (unchanged runs folded). */
export function NotebookCompareView(props: {
  changes: ICellChange[];
  metadataChanged: boolean;
  theirs: string;
  mine: string;
  trans: TranslationBundle;
}): React.ReactElement {
  const trans = props.trans;
  const changed = props.changes.filter(c => c.kind !== 'unchanged').length;
  return (
    <div className="jp-cs3sync-compareView jp-cs3sync-nbdiff">
      <div className="jp-cs3sync-compareLegend">
        <span className="jp-cs3sync-diff-theirs">− {props.theirs}</span>
        <span className="jp-cs3sync-diff-mine">+ {props.mine}</span>
      </div>
      <div className="jp-cs3sync-nbdiff-summary" role="status">
        {changed === 0
          ? trans.__('The cells are the same.')
          : trans._n('%1 cell differs.', '%1 cells differ.', changed)}
        {props.metadataChanged
          ? ' ' + trans.__('The notebook’s metadata differs.')
          : ''}
      </div>
      <ol className="jp-cs3sync-nbdiff-cells" aria-label={trans.__('Cells')}>
        {groups(props.changes).map(group => {
          const first = group[0];
          const key = `${first.kind}-${first.theirs}-${first.mine}`;
          if (first.kind === 'unchanged') {
            return (
              <li
                key={key}
                className="jp-cs3sync-nbdiff-cell jp-mod-unchanged"
                data-cell-kind="unchanged"
              >
                <details>
                  <summary>
                    {trans._n(
                      '%1 unchanged cell',
                      '%1 unchanged cells',
                      group.length
                    )}
                  </summary>
                  {group.map(cell => (
                    <DiffLines key={cell.mine ?? 0} rows={cell.rows} />
                  ))}
                </details>
              </li>
            );
          }
          const notes = notesText(first.notes, trans);
          return (
            <li
              key={key}
              className={`jp-cs3sync-nbdiff-cell jp-mod-${first.kind}`}
              data-cell-kind={first.kind}
            >
              <div className="jp-cs3sync-nbdiff-cellTitle">
                {cellTitle(first, trans)}
                {notes ? (
                  <span className="jp-cs3sync-detail"> · {notes}</span>
                ) : null}
              </div>
              <DiffLines rows={first.rows} />
            </li>
          );
        })}
      </ol>
    </div>
  );
}
