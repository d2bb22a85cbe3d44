import { expect, test } from '@jupyterlab/galata';

import { makeConflict, openFile, screenshot } from './helpers';

async function remoteText(page: any, name: string): Promise<string> {
  return page.evaluate(async (p: string) => {
    const model = await (window as any).jupyterapp.serviceManager.contents.get(
      p,
      { content: true, format: 'text', type: 'file' }
    );
    return model.content;
  }, name);
}

test.describe('conflict banner on the open document', () => {
  test('Compare, Keep theirs and Keep mine from the banner, with a notification', async ({
    page
  }) => {
    await makeConflict(
      page,
      expect,
      'banner-a.md',
      '# Mine A\n',
      '# Theirs A\n'
    );
    await openFile(page, 'banner-a.md');
    const banner = page.locator(
      '.jp-MainAreaWidget:visible .jp-cs3sync-conflictBanner'
    );
    await expect(banner).toBeVisible({ timeout: 120000 });
    await expect(banner).toContainText('changed by someone else');
    await expect(banner).not.toContainText('/eos/');
    await expect(banner.getByRole('button')).toHaveText([
      'Compare',
      'Keep mine',
      'Keep theirs'
    ]);
    // A notification says it too (once per conflict).
    await expect(
      page.locator('.jp-Notification-Toast-warning, .Toastify__toast--warning')
    ).toContainText('banner-a.md');
    await page
      .locator('.jp-MainAreaWidget:visible')
      .first()
      .screenshot({ path: screenshot('conflict-banner.png') });

    // Compare: both versions, line by line.
    await banner.getByRole('button', { name: 'Compare' }).click();
    const compare = page.locator('.jp-cs3sync-compare');
    await expect(compare.locator('[data-kind="mine"]')).toContainText('Mine A');
    await expect(compare.locator('[data-kind="theirs"]')).toContainText(
      'Theirs A'
    );

    // Keep theirs: the editor shows their version, the banner goes away.
    await page
      .locator('#jp-main-dock-panel')
      .getByRole('tab', { name: 'banner-a.md', exact: true })
      .click();
    await banner.getByRole('button', { name: 'Keep theirs' }).click();
    await expect(banner).toBeHidden({ timeout: 60000 });
    await expect(
      page.locator('.jp-MainAreaWidget:visible .cm-content')
    ).toContainText('Theirs A');
    expect(await remoteText(page, 'banner-a.md')).toContain('Theirs A');

    // Keep mine: my version goes over theirs.
    await makeConflict(
      page,
      expect,
      'banner-b.md',
      '# Mine B\n',
      '# Theirs B\n'
    );
    await openFile(page, 'banner-b.md');
    const bannerB = page.locator(
      '.jp-MainAreaWidget:visible .jp-cs3sync-conflictBanner'
    );
    await expect(bannerB).toBeVisible({ timeout: 120000 });
    await bannerB.getByRole('button', { name: 'Keep mine' }).click();
    await expect(bannerB).toBeHidden({ timeout: 60000 });
    await expect
      .poll(() => remoteText(page, 'banner-b.md'), { timeout: 60000 })
      .toContain('Mine B');
  });
});
