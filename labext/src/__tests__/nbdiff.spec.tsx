import { nullTranslator } from '@jupyterlab/translation';
import { framePromise } from '@jupyterlab/testing';
import { ReactWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';
import * as React from 'react';

import {
  cellChanges,
  cellTitle,
  INotebookCompare,
  NotebookCompareView,
  notebookMetadataChanged,
  patchLine,
  sourceRows,
  splitLines
} from '../nbdiff';

const trans = nullTranslator.load('cs3sync');

/**
 * A real answer of GET journal/<id>/compare (cs3sync.merge.compare_notebooks, nbdime 4):
 * the storage's version has 4 cells; yours changed cell 2's source, outputs and
 * execution count, deleted cell 3, added a cell at the end and a kernelspec.
 */
const COMPARED: INotebookCompare = {
  ...{
    base: {
      cells: [
        {
          cell_type: 'markdown',
          id: 'a',
          metadata: {},
          source: '# Half-lives'
        },
        {
          cell_type: 'code',
          id: 'b',
          metadata: {},
          source: 'rate = 0.5\nprint(rate)',
          outputs: [],
          execution_count: null
        },
        {
          cell_type: 'markdown',
          id: 'c',
          metadata: {},
          source: 'Radium: 1600 years.'
        },
        {
          cell_type: 'markdown',
          id: 'd',
          metadata: {},
          source: 'Polonium: 138 days.'
        }
      ],
      metadata: {},
      nbformat: 4,
      nbformat_minor: 5
    },
    diff: [
      {
        op: 'patch',
        key: 'cells',
        diff: [
          {
            op: 'patch',
            key: 1,
            diff: [
              { op: 'replace', key: 'execution_count', value: 3 },
              {
                op: 'patch',
                key: 'outputs',
                diff: [
                  {
                    op: 'addrange',
                    key: 0,
                    valuelist: [
                      {
                        output_type: 'stream',
                        name: 'stdout',
                        text: '0.25\n0.5\n'
                      }
                    ]
                  }
                ]
              },
              {
                op: 'patch',
                key: 'source',
                diff: [
                  {
                    op: 'patch',
                    key: 0,
                    diff: [{ op: 'addrange', key: 9, valuelist: '2' }]
                  },
                  { op: 'addrange', key: 1, valuelist: ['print(rate)\n'] },
                  {
                    op: 'patch',
                    key: 1,
                    diff: [{ op: 'addrange', key: 6, valuelist: '2 * ' }]
                  }
                ]
              }
            ]
          },
          { op: 'removerange', key: 2, length: 1 },
          {
            op: 'addrange',
            key: 4,
            valuelist: [
              {
                cell_type: 'markdown',
                id: 'e',
                metadata: {},
                source: 'Uranium: 4.5 billion years.'
              }
            ]
          }
        ]
      },
      {
        op: 'patch',
        key: 'metadata',
        diff: [
          {
            op: 'add',
            key: 'kernelspec',
            value: {
              name: 'python3',
              display_name: 'Python 3',
              language: 'python'
            }
          }
        ]
      }
    ]
  },
  api_path: 'decay.ipynb',
  conflict_api_path: 'decay (conflicted copy 2026-01-01 000000).ipynb'
};

describe('nbdime diff rendering', () => {
  it('splits lines as nbdime keys them (line ends kept)', () => {
    expect(splitLines('a\nb')).toEqual(['a\n', 'b']);
    expect(splitLines('a\n')).toEqual(['a\n']);
    expect(splitLines('')).toEqual([]);
  });

  it('patches a changed line character by character', () => {
    expect(
      patchLine('rate = 0.5\n', [{ op: 'addrange', key: 9, valuelist: '2' }])
    ).toBe('rate = 0.25\n');
    expect(
      patchLine('abcdef', [
        { op: 'removerange', key: 1, length: 2 },
        { op: 'addrange', key: 1, valuelist: 'XY' }
      ])
    ).toBe('aXYdef');
  });

  it('lists the cells: changed, only on the storage, only in yours, unchanged', () => {
    const changes = cellChanges(COMPARED.base, COMPARED.diff);
    expect(changes.map(c => [c.kind, c.theirs, c.mine])).toEqual([
      ['unchanged', 1, 1],
      ['modified', 2, 2],
      ['removed', 3, null],
      ['unchanged', 4, 3],
      ['added', null, 4]
    ]);
    const modified = changes[1];
    expect(modified.cellType).toBe('code');
    expect(modified.notes).toEqual(['outputs', 'execution_count']);
    // The source line diff, read back from nbdime's line and character patches.
    expect(modified.rows).toEqual([
      { kind: 'theirs', text: 'rate = 0.5' },
      { kind: 'mine', text: 'rate = 0.25' },
      { kind: 'mine', text: 'print(rate)' },
      { kind: 'theirs', text: 'print(rate)' },
      { kind: 'mine', text: 'print(2 * rate)' }
    ]);
    // Yours, as the lines of "mine" and "same" read: what the conflicted copy holds.
    expect(
      modified.rows
        .filter(r => r.kind !== 'theirs')
        .map(r => r.text)
        .join('\n')
    ).toBe('rate = 0.25\nprint(rate)\nprint(2 * rate)');
    expect(changes[2].rows).toEqual([
      { kind: 'theirs', text: 'Radium: 1600 years.' }
    ]);
    expect(changes[4].rows).toEqual([
      { kind: 'mine', text: 'Uranium: 4.5 billion years.' }
    ]);
    expect(notebookMetadataChanged(COMPARED.diff)).toBe(true);
    expect(changes.map(c => cellTitle(c, trans))).toEqual([
      'Cell 1 (markdown)',
      'Cell 2 (code): changed',
      'Cell 3 (markdown): only on the storage',
      'Cell 3 (markdown)',
      'Cell 4 (markdown): only in yours'
    ]);
  });

  it('shows every cell unchanged when nothing differs', () => {
    const changes = cellChanges(COMPARED.base, []);
    expect(changes.map(c => c.kind)).toEqual([
      'unchanged',
      'unchanged',
      'unchanged',
      'unchanged'
    ]);
    expect(sourceRows(['a\n', 'b'], null)).toEqual([
      { kind: 'same', text: 'a' },
      { kind: 'same', text: 'b' }
    ]);
  });

  it('renders the cells with their line diff, unchanged runs folded', async () => {
    const widget = ReactWidget.create(
      <NotebookCompareView
        changes={cellChanges(COMPARED.base, COMPARED.diff)}
        metadataChanged={true}
        theirs="On the storage: decay.ipynb"
        mine="Yours: decay (conflicted copy 2026-01-01 000000).ipynb"
        trans={trans}
      />
    );
    Widget.attach(widget, document.body);
    await framePromise();
    await framePromise();
    const node = widget.node;
    expect(node.querySelector('[role="status"]')!.textContent).toBe(
      '3 cells differ. The notebook’s metadata differs.'
    );
    const cells = Array.from(node.querySelectorAll('[data-cell-kind]'));
    expect(cells.map(c => c.getAttribute('data-cell-kind'))).toEqual([
      'unchanged',
      'modified',
      'removed',
      'unchanged',
      'added'
    ]);
    expect(cells[0].querySelector('summary')!.textContent).toBe(
      '1 unchanged cell'
    );
    expect(cells[1].textContent).toContain(
      'Cell 2 (code): changed · outputs changed · execution count changed'
    );
    expect(
      Array.from(cells[1].querySelectorAll('[data-kind="mine"]')).map(
        r => r.textContent
      )
    ).toEqual(['+ rate = 0.25', '+ print(rate)', '+ print(2 * rate)']);
    expect(cells[2].querySelector('[data-kind="theirs"]')!.textContent).toBe(
      '− Radium: 1600 years.'
    );
    widget.dispose();
  });
});
