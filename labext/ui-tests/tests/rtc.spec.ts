/**
 * Real-time collaboration (jupyter-collaboration) on cs3sync: run by playwright-rtc.config.js, with RTC on.
 */
import { expect, test } from '@jupyterlab/galata';

import { admin, EINSTEIN_HOME, openFile, waitSynced } from './helpers';

function notebook(cells: string[]): any {
  return {
    cells: cells.map((source, i) => ({
      cell_type: 'markdown',
      id: `cell-${i}`,
      metadata: {},
      source
    })),
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5
  };
}

/** What the storage holds at a Jupyter path of einstein's home (read from the emulator). */
async function stored(path: string): Promise<any> {
  const answer = await admin('storage/read', {
    path: `${EINSTEIN_HOME}/${path}`
  });
  return JSON.parse(Buffer.from(answer.data_b64, 'base64').toString('utf-8'));
}

function sources(nb: any): string[] {
  return nb.cells.map((c: any) =>
    Array.isArray(c.source) ? c.source.join('') : c.source
  );
}

/** The cells of the notebook open in a page, as its shared model (the room's document) holds them. */
async function cellsOf(page: any): Promise<string[]> {
  return page.evaluate(() => {
    const widget = (window as any).jupyterapp.shell.currentWidget;
    return widget.context.model.sharedModel.cells.map((c: any) =>
      c.getSource()
    );
  });
}

/** A second browser (a context of its own: another person's browser) on the same server. */
async function secondBrowser(browser: any, baseURL: string): Promise<any> {
  const context = await browser.newContext();
  const other = await context.newPage();
  await other.goto(`${baseURL}/lab/workspaces/second`);
  await other.waitForFunction(() => !!(window as any).jupyterapp);
  await other.evaluate(() => (window as any).jupyterapp.restored);
  return other;
}

async function saveNotebook(page: any, path: string, cells: string[]) {
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

test.describe('Real-time collaboration', () => {
  test('two pages co-edit a notebook; a change on the storage reaches both', async ({
    page,
    browser,
    baseURL,
    tmpPath
  }) => {
    const NAME = `${tmpPath}/co-edited.ipynb`;
    await saveNotebook(page, NAME, ['# Half-lives', 'Radium: 1600 years.']);
    await waitSynced(page, expect);
    const other = await secondBrowser(browser, baseURL!);
    try {
      await openFile(page, NAME);
      await openFile(other, NAME);
      const mine = page.locator('.jp-Notebook');
      const theirs = other.locator('.jp-Notebook');
      await expect(mine).toContainText('Radium: 1600 years.');
      await expect(theirs).toContainText('Radium: 1600 years.');

      // Each edits a different cell; each sees the other's edit at once (one shared document).
      await page.evaluate(() => {
        const widget = (window as any).jupyterapp.shell.currentWidget;
        widget.context.model.sharedModel.cells[0].setSource(
          '# Half-lives (einstein)'
        );
      });
      await other.evaluate(() => {
        const widget = (window as any).jupyterapp.shell.currentWidget;
        widget.context.model.sharedModel.addCell({
          cell_type: 'markdown',
          source: 'Polonium: 138 days (marie).'
        });
      });
      await expect(mine).toContainText('Polonium: 138 days (marie).');
      await expect(theirs).toContainText('Half-lives (einstein)');

      // The room saves through cs3sync's contents manager: both edits reach the storage.
      await expect
        .poll(async () => sources(await stored(NAME)), { timeout: 60000 })
        .toEqual([
          '# Half-lives (einstein)',
          'Radium: 1600 years.',
          'Polonium: 138 days (marie).'
        ]);
      await waitSynced(page, expect);

      // Richard corrects a cell on CERNBox (another client): both pages show his version.
      const richard = await stored(NAME);
      richard.cells[1].source = 'Radium: 1600 years (checked by richard).';
      await admin('storage/external_write', {
        path: `${EINSTEIN_HOME}/${NAME}`,
        data: JSON.stringify(richard, null, 1) + '\n'
      });
      await expect(mine).toContainText('checked by richard', {
        timeout: 60000
      });
      await expect(theirs).toContainText('checked by richard', {
        timeout: 60000
      });
      expect(await cellsOf(page)).toEqual([
        '# Half-lives (einstein)',
        'Radium: 1600 years (checked by richard).',
        'Polonium: 138 days (marie).'
      ]);
      expect(await cellsOf(other)).toEqual(await cellsOf(page));
      expect(sources(await stored(NAME))).toEqual(await cellsOf(page));
    } finally {
      await other.context().close();
    }
  });

  test('a rename, in Jupyter or on the storage, keeps the shared document: both pages follow it', async ({
    page,
    browser,
    baseURL,
    tmpPath
  }) => {
    const NAME = `${tmpPath}/draft.ipynb`;
    const RENAMED = `${tmpPath}/radium.ipynb`;
    await saveNotebook(page, NAME, ['# Radium']);
    await waitSynced(page, expect);
    const other = await secondBrowser(browser, baseURL!);
    try {
      await openFile(page, NAME);
      await openFile(other, NAME);
      await expect(other.locator('.jp-Notebook')).toContainText('# Radium');
      await page.evaluate(
        async ([from, to]: [string, string]) => {
          await (window as any).jupyterapp.serviceManager.contents.rename(
            from,
            to
          );
        },
        [NAME, RENAMED]
      );
      // The room keeps its file id (the CS3 resource id): the other page's document takes the new path.
      const pathOf = (p: any) =>
        p.evaluate(
          () => (window as any).jupyterapp.shell.currentWidget.context.path
        );
      await expect.poll(() => pathOf(other), { timeout: 60000 }).toBe(RENAMED);
      await expect.poll(() => pathOf(page), { timeout: 60000 }).toBe(RENAMED);
      await other.evaluate(() => {
        const widget = (window as any).jupyterapp.shell.currentWidget;
        widget.context.model.sharedModel.addCell({
          cell_type: 'markdown',
          source: 'Found in pitchblende.'
        });
      });
      await expect
        .poll(async () => sources(await stored(RENAMED)), { timeout: 60000 })
        .toEqual(['# Radium', 'Found in pitchblende.']);
      await waitSynced(page, expect);

      // Richard renames it on CERNBox: the resource keeps its id, so both pages follow it too.
      const FINAL = `${tmpPath}/radium-1898.ipynb`;
      await admin('storage/external_move', {
        path: `${EINSTEIN_HOME}/${RENAMED}`,
        to: `${EINSTEIN_HOME}/${FINAL}`
      });
      await expect.poll(() => pathOf(other), { timeout: 60000 }).toBe(FINAL);
      await expect.poll(() => pathOf(page), { timeout: 60000 }).toBe(FINAL);
      await page.evaluate(() => {
        const widget = (window as any).jupyterapp.shell.currentWidget;
        widget.context.model.sharedModel.cells[0].setSource('# Radium (1898)');
      });
      await expect
        .poll(async () => sources(await stored(FINAL)), { timeout: 60000 })
        .toEqual(['# Radium (1898)', 'Found in pitchblende.']);
      await waitSynced(page, expect);
    } finally {
      await other.context().close();
    }
  });
});
