import { expect, test } from '@jupyterlab/galata';

import { admin, EINSTEIN_HOME, openFile, screenshot } from './helpers';

function notebook(cells: string[]): any {
  return {
    cells: cells.map((source, i) => ({
      cell_type: 'markdown',
      id: `cell-${i}`,
      metadata: {},
      source
    })),
    metadata: {
      kernelspec: {
        name: 'python3',
        display_name: 'Python 3 (ipykernel)',
        language: 'python'
      }
    },
    nbformat: 4,
    nbformat_minor: 5
  };
}

const BASE = ['# Half-lives', 'Radium: 1600 years.', 'Polonium: 138 days.'];

async function saveNotebook(
  page: any,
  path: string,
  cells: string[]
): Promise<void> {
  await page.evaluate(
    async ([p, nb]: [string, any]) => {
      await (window as any).jupyterapp.serviceManager.contents.save(p, {
        type: 'notebook',
        content: nb
      });
    },
    [path, notebook(cells)]
  );
}

/** Operations not yet applied to the storage (the journal endpoint the Sync panel polls). */
async function pending(page: any): Promise<number> {
  return page.evaluate(async () => {
    const response = await fetch('/api/cs3sync/journal');
    return (await response.json()).pending;
  });
}

test.describe('Saves merged with a change on the storage', () => {
  test("an offline edit merges with marie's change and the open notebook reloads", async ({
    page,
    tmpPath
  }) => {
    // In the test's own folder (Galata removes it afterwards): other tests' listings stay as they were.
    const NAME = `${tmpPath}/half-lives.ipynb`;
    await saveNotebook(page, NAME, BASE);
    await expect.poll(() => pending(page), { timeout: 60000 }).toBe(0);
    await openFile(page, NAME);
    const view = page.locator('.jp-Notebook');
    await expect(view).toContainText('Polonium: 138 days.');
    // Saved once from the editor (Lab adds its metadata): the version marie and einstein start from.
    await page.notebook.save();
    await expect.poll(() => pending(page), { timeout: 60000 }).toBe(0);
    const base = await page.evaluate(
      async (p: string) =>
        (await (window as any).jupyterapp.serviceManager.contents.get(p))
          .content,
      NAME
    );

    // einstein goes offline and adds a cell (the save is journaled); marie fixes the title meanwhile.
    await admin('grpc/outage');
    try {
      await page.notebook.addCell('markdown', 'Uranium: 4.5 billion years.');
      await page.notebook.save();
      const hers = { ...base, cells: base.cells.map((c: any) => ({ ...c })) };
      hers.cells[0].source = '# Half-lives (corrected)';
      await admin('storage/external_write', {
        path: `${EINSTEIN_HOME}/${NAME}`,
        data: JSON.stringify(hers, null, 1) + '\n'
      });
    } finally {
      await admin('grpc/restart');
    }

    // The engine merges both; the open notebook, saved and unmodified, reloads the merge and says so.
    await expect(view).toContainText('Half-lives (corrected)', {
      timeout: 90000
    });
    await expect(view).toContainText('Uranium: 4.5 billion years.');
    const toast = page.locator('.Toastify__toast', {
      hasText: 'merged with a change on the storage, 1 cell'
    });
    await expect(toast).toBeInViewport({ ratio: 1 });
    await page.screenshot({ path: screenshot('merged.png') });
  });
});
