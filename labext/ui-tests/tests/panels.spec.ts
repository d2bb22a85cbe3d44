import { expect, test } from '@jupyterlab/galata';

import { admin, EINSTEIN_HOME, openFile, screenshot } from './helpers';

test.describe('cs3sync panels on the demo emulator', () => {
  test('the server extension answers and every plugin activates', async ({
    page
  }) => {
    const version = await page.evaluate(async () => {
      const response = await fetch('/api/cs3sync/version');
      return response.json();
    });
    expect(version.contents_manager).toBe(true);
    await expect(page.locator('.jp-Dialog')).toHaveCount(0); // no "server extension missing" message
    await expect(
      page.locator('.jp-SideBar.jp-mod-left [data-id="cs3sync-spaces"]')
    ).toHaveCount(1);
    await expect(
      page.locator('.jp-SideBar.jp-mod-left [data-id="cs3sync-shares"]')
    ).toHaveCount(1);
    await expect(
      page.locator('.jp-SideBar.jp-mod-right [data-id="cs3sync-sync"]')
    ).toHaveCount(1);
  });

  test('Spaces lists the demo spaces and a click opens one', async ({
    page
  }) => {
    await page.sidebar.openTab('cs3sync-spaces');
    const panel = page.locator('#cs3sync-spaces');
    await expect(panel.locator('.jp-cs3sync-item')).toHaveCount(3, {
      timeout: 30000
    });
    await expect(panel).toContainText('cosmology');
    await expect(panel).toContainText('relativity-lab');
    await expect(panel.locator('.jp-cs3sync-badge-project')).toHaveCount(2);
    await expect(panel.locator('.jp-cs3sync-badge-personal')).toHaveCount(1);
    await panel.screenshot({ path: screenshot('spaces.png') });
    await panel.locator('.jp-cs3sync-item', { hasText: 'cosmology' }).click();
    await expect(page.locator('.jp-FileBrowser-crumbs')).toContainText(
      'cosmology'
    );
    await expect(
      page
        .locator(
          '.jp-DirListing-item[title*="README.md"], .jp-DirListing-item:has-text("README.md")'
        )
        .first()
    ).toBeVisible({ timeout: 30000 });
  });

  test('Shares lists incoming, outgoing and links; the dialog shares with marie', async ({
    page
  }) => {
    await page.sidebar.openTab('cs3sync-shares');
    const panel = page.locator('#cs3sync-shares');
    await expect(
      panel.locator('.jp-cs3sync-item', { hasText: 'radium' })
    ).toBeVisible({
      timeout: 30000
    });
    await expect(panel).toContainText('Marie Curie');
    await panel.screenshot({ path: screenshot('shares-incoming.png') });
    await panel.getByRole('tab', { name: 'Shared by me' }).click();
    await expect(panel).toContainText('shared-with-marie');
    await expect(panel).toContainText('data.csv');
    await panel.screenshot({ path: screenshot('shares-outgoing.png') });
    await panel.getByRole('tab', { name: 'Public links' }).click();
    await expect(panel).toContainText('papers');

    // Open radium (someone else's folder, outside the root) from "Shared with me".
    await panel.getByRole('tab', { name: 'Shared with me' }).click();
    await panel.locator('.jp-cs3sync-item', { hasText: 'radium' }).click();
    await expect(page.locator('.jp-FileBrowser-crumbs')).toContainText(
      'radium'
    );
    await expect(page.locator('.jp-DirListing-content')).toContainText(
      'measurements.csv',
      { timeout: 30000 }
    );

    // Share welcome.ipynb with marie as editor through the context menu dialog.
    await page.filebrowser.openDirectory('/');
    const item = page.locator('.jp-DirListing-item', {
      hasText: 'welcome.ipynb'
    });
    await item.click({ button: 'right' });
    await page.getByRole('menuitem', { name: 'Share…' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Share “welcome.ipynb”');
    await dialog
      .getByRole('combobox', { name: 'Role' })
      .first()
      .selectOption('editor');
    await dialog.getByRole('searchbox').fill('mar');
    const candidate = dialog.locator('.jp-cs3sync-found .jp-cs3sync-item', {
      hasText: 'Marie Curie'
    });
    await expect(candidate).toBeVisible({ timeout: 30000 });
    await candidate.locator('.jp-cs3sync-add').click();
    const grantees = dialog.locator('.jp-cs3sync-grantees');
    await expect(grantees).toContainText('Marie Curie', { timeout: 30000 });
    await dialog.locator('.jp-cs3sync-createLink').click();
    await expect(
      dialog.locator('.jp-cs3sync-links .jp-cs3sync-item')
    ).toHaveCount(1, {
      timeout: 30000
    });
    await dialog.locator('.jp-Dialog-content').screenshot({
      path: screenshot('share-dialog.png')
    });
    await dialog.getByRole('button', { name: 'Close' }).click();
    await expect(dialog).toHaveCount(0);
    await page.sidebar.openTab('cs3sync-shares');
    await panel.getByRole('tab', { name: 'Shared by me' }).click();
    await expect(
      panel.locator('.jp-cs3sync-item', { hasText: 'welcome.ipynb' })
    ).toContainText('editor', { timeout: 30000 });
  });

  test('the quota bar shows the emulator numbers', async ({ page }) => {
    await admin('storage/quota', {
      total: 10_000_000_000,
      used: 7_800_000_000
    });
    await page.reload();
    await page.waitForSelector('.jp-cs3sync-quotaTrack', { timeout: 60000 });
    const bar = page.locator('.jp-cs3sync-quotaTrack');
    await expect(bar).toHaveAttribute('aria-valuenow', '78', {
      timeout: 60000
    });
    await expect(bar).toHaveClass(/jp-mod-warning/);
    await expect(page.locator('.jp-cs3sync-quotaText')).toContainText(
      '7.8 GB of 10.0 GB'
    );
    await expect(page.locator('.jp-cs3sync-quotaStatus')).toContainText('78%');
    await page
      .locator('.jp-FileBrowser')
      .screenshot({ path: screenshot('quota.png') });
    await admin('storage/quota', { total: null, used: null });
  });

  test('a foreign lock shows the read-only indicator', async ({ page }) => {
    await admin('storage/lock', {
      path: `${EINSTEIN_HOME}/papers/annus-mirabilis.md`,
      app: 'cernbox-office',
      user: 'marie'
    });
    await openFile(page, 'papers/annus-mirabilis.md');
    const indicator = page.locator('.jp-cs3sync-lockIndicator');
    await expect(indicator).toContainText('locked by', { timeout: 30000 });
    await expect(page.locator('.jp-cs3sync-mod-foreignLock')).toHaveCount(1);
    await page
      .locator('.jp-MainAreaWidget.jp-cs3sync-mod-foreignLock')
      .screenshot({
        path: screenshot('lock.png')
      });
  });

  test('with the storage down a save is pending and clears when it returns', async ({
    page
  }) => {
    const status = page.locator('.jp-cs3sync-syncItem');
    await expect(status).toHaveAttribute('data-state', 'online', {
      timeout: 30000
    });
    await admin('grpc/outage');
    try {
      // Saved through JupyterLab's contents service (what editors and uploads call).
      await page.evaluate(async () => {
        await (window as any).jupyterapp.serviceManager.contents.save(
          'offline-notes.md',
          {
            type: 'file',
            format: 'text',
            content: '# Written while the storage was down\n'
          }
        );
      });
      await expect(status).toHaveAttribute('data-pending', /^[1-9]/, {
        timeout: 60000
      });
      await expect(status).toContainText('pending');
      await page.sidebar.openTab('cs3sync-sync');
      const panel = page.locator('#cs3sync-sync');
      await expect(panel).toContainText('offline-notes.md');
      await panel.screenshot({ path: screenshot('sync.png') });
    } finally {
      await admin('grpc/restart');
    }
    await expect(status).toHaveAttribute('data-pending', '0', {
      timeout: 120000
    });
    await expect(status).toHaveAttribute('data-state', 'online', {
      timeout: 30000
    });
    await expect(status).toContainText('synced');
    await expect(page.locator('#cs3sync-sync')).toContainText(
      'Everything is saved to the storage.'
    );
  });
});
