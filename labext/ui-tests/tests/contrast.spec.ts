import { expect, test } from '@jupyterlab/galata';

import {
  admin,
  EINSTEIN_HOME,
  lowContrast,
  makeConflict,
  openFile,
  saveText,
  screenshot,
  waitSynced
} from './helpers';

test.describe('dark theme', () => {
  test('every extension element meets WCAG AA contrast', async ({ page }) => {
    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute(
        'apputils:change-theme',
        { theme: 'JupyterLab Dark' }
      );
    });
    await expect(page.locator('body')).toHaveAttribute(
      'data-jp-theme-light',
      'false'
    );
    const failures: string[] = [];
    const check = async (where: string) => {
      for (const f of await lowContrast(page)) {
        failures.push(`${where}: ${f}`);
      }
    };
    await page.sidebar.openTab('cs3sync-spaces');
    await expect(
      page.locator('#cs3sync-spaces li.jp-cs3sync-item')
    ).toHaveCount(3);
    await check('spaces');
    await page.sidebar.openTab('cs3sync-shares');
    const shares = page.locator('#cs3sync-shares');
    for (const tab of ['Shared with me', 'Shared by me', 'Public links']) {
      await shares.getByRole('tab', { name: tab }).click();
      await expect(shares.locator('li.jp-cs3sync-item').first()).toBeVisible();
      await check(tab);
    }
    // The lock chip (a file of its own: the lock stays for the rest of the run).
    await saveText(page, 'dark-locked.md', '# locked\n');
    await waitSynced(page, expect);
    await admin('storage/lock', {
      path: `${EINSTEIN_HOME}/dark-locked.md`,
      app: 'cernbox-office',
      user: 'marie'
    });
    await openFile(page, 'dark-locked.md');
    await expect(page.locator('.jp-cs3sync-lockIndicator')).toBeVisible();
    await check('lock chip');
    // The conflict banner on an open document, and its Compare view.
    await makeConflict(
      page,
      expect,
      'dark-conflict.md',
      '# Mine\n',
      '# Theirs\n'
    );
    await openFile(page, 'dark-conflict.md');
    const banner = page.locator(
      '.jp-MainAreaWidget:visible .jp-cs3sync-conflictBanner'
    );
    await expect(banner).toBeVisible({ timeout: 120000 });
    await check('conflict banner');
    await banner.getByRole('button', { name: 'Compare' }).click();
    await expect(
      page.locator('.jp-cs3sync-compare [data-kind="theirs"]')
    ).toContainText('Theirs');
    await check('compare');
    // Settle it (Keep theirs), so the next checks see no banner of ours.
    await page
      .locator('#jp-main-dock-panel')
      .getByRole('tab', { name: 'dark-conflict.md', exact: true })
      .click();
    await banner.getByRole('button', { name: 'Keep theirs' }).click();
    await expect(banner).toBeHidden({ timeout: 60000 });
    // The offline state in the Sync panel and the status bar.
    await admin('grpc/outage');
    try {
      await saveText(page, 'dark-offline.md', '# offline\n');
      await page.sidebar.openTab('cs3sync-sync');
      await expect(page.locator('.jp-cs3sync-syncItem')).toHaveAttribute(
        'data-state',
        'offline',
        { timeout: 30000 }
      );
      await expect(
        page.locator('#cs3sync-sync .jp-cs3sync-syncState.jp-mod-offline')
      ).toBeVisible();
      await check('offline');
      await page.screenshot({ path: screenshot('dark.png') });
    } finally {
      await admin('grpc/restart');
    }
    // Leave the next tests what they expect: light theme, nothing pending.
    await page.evaluate(async () => {
      await (window as any).jupyterapp.commands.execute(
        'apputils:change-theme',
        { theme: 'JupyterLab Light' }
      );
    });
    await expect
      .poll(
        () =>
          page.evaluate(async () => {
            const app = (window as any).jupyterapp;
            const url = app.serviceManager.serverSettings.baseUrl;
            const answer = await fetch(url + 'api/cs3sync/journal');
            const journal = await answer.json();
            return journal.pending === 0 && journal.state === 'online';
          }),
        { timeout: 120000 }
      )
      .toBe(true);
    expect(failures).toEqual([]);
  });
});
