import { expect, test } from '@jupyterlab/galata';

import {
  admin,
  EINSTEIN_HOME,
  lowContrast,
  openFile,
  screenshot
} from './helpers';

const MARIE_HOME = '/eos/user/m/marie';

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

    // The Sync panel lists the merged save: a row named for screen readers, opened from the keyboard.
    await page.evaluate(() =>
      (window as any).jupyterapp.commands.execute('application:close-all')
    );
    await expect(view).toBeHidden();
    await page.sidebar.openTab('cs3sync-sync');
    const panel = page.locator('#cs3sync-sync');
    const row = panel.getByRole('button', {
      name: `Open ${NAME}: merged with a change on the storage, 1 cell`
    });
    await expect(row).toBeVisible({ timeout: 30000 });
    await expect(panel.locator('.jp-cs3sync-mergedSection h3')).toHaveText(
      /^Merged \(\d+\)$/
    );
    await row.focus();
    await page.keyboard.press('Enter');
    await expect(view).toContainText('Uranium: 4.5 billion years.');
    await expect(view).toContainText('Half-lives (corrected)');
  });

  test("in a folder marie shares, the Sync panel names her: merged with Marie Curie's change", async ({
    page
  }) => {
    // marie shares a folder of hers with einstein (editor); the Shares listing mounts it under "Shared with me".
    const FOLDER = 'radioactivity';
    await admin('storage/external_mkdir', { path: `${MARIE_HOME}/${FOLDER}` });
    const share = await admin('shares/create', {
      owner: 'marie',
      grantee: 'einstein',
      path: `${MARIE_HOME}/${FOLDER}`,
      editor: true
    });
    const NAME = `Shared with me/${FOLDER}/decay.ipynb`;
    try {
      await page.evaluate(async () => {
        const response = await fetch('/api/cs3sync/shares/incoming');
        if (!response.ok) {
          throw new Error(`shares/incoming: ${response.status}`);
        }
      });
      await saveNotebook(page, NAME, BASE);
      await expect.poll(() => pending(page), { timeout: 60000 }).toBe(0);
      await page.evaluate(
        async (p: string) =>
          (window as any).jupyterapp.serviceManager.contents.get(p),
        NAME
      );
      // einstein adds a cell offline; marie corrects the title in her folder meanwhile.
      await admin('grpc/outage');
      try {
        await saveNotebook(page, NAME, [
          ...BASE,
          'Uranium: 4.5 billion years.'
        ]);
        await admin('storage/external_write', {
          path: `${MARIE_HOME}/${FOLDER}/decay.ipynb`,
          data:
            JSON.stringify(
              notebook(['# Half-lives (corrected)', ...BASE.slice(1)]),
              null,
              1
            ) + '\n'
        });
      } finally {
        await admin('grpc/restart');
      }

      await page.sidebar.openTab('cs3sync-sync');
      const panel = page.locator('#cs3sync-sync');
      const row = panel.getByRole('button', {
        name: `Open ${NAME}: merged with Marie Curie's change, 1 cell`
      });
      await expect(row).toBeVisible({ timeout: 90000 });
      await expect(row).toContainText('decay.ipynb');
      // The storage holds both edits.
      const merged = await page.evaluate(
        async (p: string) =>
          (await (window as any).jupyterapp.serviceManager.contents.get(p))
            .content,
        NAME
      );
      expect(merged.cells.map((c: any) => c.source)).toEqual([
        '# Half-lives (corrected)',
        ...BASE.slice(1),
        'Uranium: 4.5 billion years.'
      ]);
      // Notifications said it already: dismissed, so that none covers the panel's picture.
      await page.evaluate(() =>
        (window as any).jupyterapp.commands.execute(
          'apputils:dismiss-notification'
        )
      );
      await expect(page.locator('.Toastify__toast')).toHaveCount(0);
      await panel.screenshot({ path: screenshot('sync-merged.png') });
    } finally {
      // Other specs' Shares listings and pictures stay as they were.
      await admin('shares/remove', { owner: 'marie', id: share.id });
    }
  });

  test('the same cell changed on both sides: a conflict, and Compare shows the cell diff', async ({
    page,
    tmpPath
  }) => {
    const NAME = `${tmpPath}/activity.ipynb`;
    const base = ['# Activity', 'Radium: 1600 years.', 'Polonium: 138 days.'];
    await saveNotebook(page, NAME, base);
    await expect.poll(() => pending(page), { timeout: 60000 }).toBe(0);
    // The version this page last read is what its next save is based on.
    await page.evaluate(
      async (p: string) =>
        (window as any).jupyterapp.serviceManager.contents.get(p),
      NAME
    );
    await admin('grpc/outage');
    try {
      await saveNotebook(page, NAME, [
        base[0],
        'Radium: 1601 years.',
        base[2],
        'Uranium: 4.5 billion years.'
      ]);
      await admin('storage/external_write', {
        path: `${EINSTEIN_HOME}/${NAME}`,
        data:
          JSON.stringify(
            notebook([base[0], 'Radium: 1599 years.', base[2]]),
            null,
            1
          ) + '\n'
      });
    } finally {
      await admin('grpc/restart');
    }

    await openFile(page, NAME);
    const banner = page.locator(
      '.jp-MainAreaWidget:visible .jp-cs3sync-conflictBanner'
    );
    await expect(banner).toBeVisible({ timeout: 120000 });
    await banner.getByRole('button', { name: 'Compare' }).click();
    const compare = page.locator('.jp-cs3sync-compare');
    const changed = compare.locator('[data-cell-kind="modified"]');
    await expect(changed).toHaveCount(1, { timeout: 30000 });
    await expect(changed).toContainText('Cell 2 (markdown): changed');
    await expect(changed.locator('[data-kind="theirs"]')).toHaveText(
      '− Radium: 1599 years.'
    );
    await expect(changed.locator('[data-kind="mine"]')).toHaveText(
      '+ Radium: 1601 years.'
    );
    await expect(compare.locator('[data-cell-kind="added"]')).toContainText(
      'Uranium: 4.5 billion years.'
    );
    await expect(compare.locator('[role="status"]')).toContainText(
      '2 cells differ.'
    );
    await compare.screenshot({ path: screenshot('compare-notebook.png') });

    // WCAG AA in the dark theme: this Compare view, and the Sync panel's Merged rows (from the tests above).
    const theme = (name: string) =>
      page.evaluate(
        async (t: string) =>
          (window as any).jupyterapp.commands.execute('apputils:change-theme', {
            theme: t
          }),
        name
      );
    await theme('JupyterLab Dark');
    try {
      await expect(page.locator('body')).toHaveAttribute(
        'data-jp-theme-light',
        'false'
      );
      await page.sidebar.openTab('cs3sync-sync');
      await expect(
        page.locator('#cs3sync-sync .jp-cs3sync-mergedSection li')
      ).not.toHaveCount(0);
      await compare.locator('summary').first().click(); // an unfolded unchanged cell too
      expect(await lowContrast(page)).toEqual([]);
    } finally {
      await theme('JupyterLab Light');
    }

    // Keep theirs: the conflict is settled (the copy stays in the test's folder, removed with it).
    await page
      .locator('#jp-main-dock-panel')
      .getByRole('tab', { name: 'activity.ipynb', exact: true })
      .click();
    await banner.getByRole('button', { name: 'Keep theirs' }).click();
    await expect(banner).toBeHidden({ timeout: 60000 });
  });
});
