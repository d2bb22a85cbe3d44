// Copyright (c) cs3sync contributors. Apache-2.0.
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { showErrorMessage } from '@jupyterlab/apputils';
import {
  IDocumentManager,
  IDocumentWidgetOpener
} from '@jupyterlab/docmanager';
import {
  IDefaultFileBrowser,
  IFileBrowserFactory
} from '@jupyterlab/filebrowser';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { PanelLayout } from '@lumino/widgets';

import { CS3Client } from './client';
import { shareIcon } from './icons';
import { ConflictActions, ConflictWatcher } from './conflicts';
import { LockSession } from './locking';
import { merges } from './merged';
import { QuotaBar, QuotaModel, QuotaStatus } from './quota';
import { CS3APIError } from './request';
import { openShareDialog } from './sharedialog';
import { SharesPanel } from './shares';
import { SpacesPanel } from './spaces';
import { JournalModel, SyncPanel, SyncStatus } from './sync';
import { ICS3Client } from './tokens';
import { IVersion } from './types';
import { VERSION } from './version';

export { CS3Client } from './client';
export { ICS3Client } from './tokens';
export * from './types';

const PLUGIN = '@cs3sync/labextension';

/** Check the server extension; returns its version answer or null. */
export async function checkServer(
  client: CS3Client,
  translator: ITranslator = nullTranslator
): Promise<IVersion | null> {
  const trans = translator.load('cs3sync');
  try {
    const server = await client.version();
    if (server.version !== VERSION) {
      void showErrorMessage(
        trans.__('cs3sync version mismatch'),
        trans.__(
          'The cs3sync front end is version %1 but the server extension is version %2. Reinstall the package (pip install cs3sync) and restart JupyterLab.',
          VERSION,
          server.version
        )
      );
    }
    return server;
  } catch (error) {
    const status = (error as CS3APIError).status;
    void showErrorMessage(
      trans.__('cs3sync server extension unavailable'),
      status === 404
        ? trans.__(
            'The cs3sync server extension is not installed or not enabled, so Spaces, Shares, Quota, Sync and Locking cannot work. Install it with pip install cs3sync, check it with jupyter server extension list, and restart JupyterLab.'
          )
        : trans.__(
            'The cs3sync server extension did not answer: %1',
            (error as Error).message
          )
    );
    return null;
  }
}

const core: JupyterFrontEndPlugin<ICS3Client> = {
  id: `${PLUGIN}:core`,
  description: 'The cs3sync REST client shared by the other cs3sync plugins.',
  autoStart: true,
  provides: ICS3Client,
  optional: [ITranslator, IDefaultFileBrowser],
  activate: async (
    app: JupyterFrontEnd,
    translator: ITranslator | null,
    browser: IDefaultFileBrowser | null
  ): Promise<ICS3Client> => {
    const client = new CS3Client({
      serverSettings: app.serviceManager.serverSettings
    });
    const server = await checkServer(client, translator ?? nullTranslator);
    const cs3: ICS3Client = {
      client,
      server,
      open: async (apiPath: string, type?: 'file' | 'directory') => {
        // A locked, unreachable or full storage (423/503/507) is a message, never an uncaught page error.
        try {
          if (type === 'file') {
            await app.commands.execute('docmanager:open', { path: apiPath });
            return;
          }
          if (browser) {
            await browser.model.cd('/' + apiPath);
            app.shell.activateById(browser.id);
          } else {
            await app.commands.execute('filebrowser:go-to-path', {
              path: apiPath
            });
          }
        } catch (error) {
          const trans = (translator ?? nullTranslator).load('cs3sync');
          void showErrorMessage(
            trans.__('Cannot open %1', apiPath.split('/').pop() || apiPath),
            (error as Error).message
          );
        }
      }
    };
    console.log(
      `${PLUGIN}:core activated (server ${server?.version ?? 'missing'})`
    );
    return cs3;
  }
};

const spaces: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN}:spaces`,
  description: 'The Spaces sidebar: the storage spaces of the user.',
  autoStart: true,
  requires: [ICS3Client],
  optional: [ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    cs3: ICS3Client,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const panel = new SpacesPanel({
      cs3,
      translator: translator ?? nullTranslator
    });
    app.shell.add(panel, 'left', { rank: 300 });
    restorer?.add(panel, 'cs3sync-spaces');
  }
};

const shares: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN}:shares`,
  description:
    'The Shares sidebar and the "Share…" entry of the file browser context menu.',
  autoStart: true,
  requires: [ICS3Client],
  optional: [ILayoutRestorer, ITranslator, IFileBrowserFactory],
  activate: (
    app: JupyterFrontEnd,
    cs3: ICS3Client,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null,
    factory: IFileBrowserFactory | null
  ) => {
    translator = translator ?? nullTranslator;
    const trans = translator.load('cs3sync');
    const panel = new SharesPanel({ cs3, translator });
    app.shell.add(panel, 'left', { rank: 301 });
    restorer?.add(panel, 'cs3sync-shares');

    const command = 'cs3sync:share';
    app.commands.addCommand(command, {
      label: trans.__('Share…'),
      caption: trans.__('Share with users, groups or a public link'),
      icon: shareIcon,
      describedBy: { args: { type: 'object', properties: {} } },
      isEnabled: () => !!factory?.tracker.currentWidget,
      execute: async () => {
        const browser = factory?.tracker.currentWidget;
        const item = browser?.selectedItems().next();
        if (!item || item.done || !item.value) {
          return;
        }
        await openShareDialog({
          cs3,
          path: item.value.path,
          name: item.value.name,
          translator: translator ?? nullTranslator
        });
      }
    });
    app.contextMenu.addItem({
      command,
      selector: '.jp-DirListing-item[data-isdir]',
      // In the links group beside "Copy Download Link" (13), away from Cut/Copy/Paste (7-8.5).
      rank: 13
    });
  }
};

const quota: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN}:quota`,
  description:
    'The storage quota bar under the file browser and in the status bar.',
  autoStart: true,
  requires: [ICS3Client],
  optional: [IDefaultFileBrowser, IStatusBar, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    cs3: ICS3Client,
    browser: IDefaultFileBrowser | null,
    statusBar: IStatusBar | null,
    translator: ITranslator | null
  ) => {
    const model = new QuotaModel({ cs3 });
    // A save changes what is used: refresh then (and on the poll), not only every minute.
    app.serviceManager.contents.fileChanged.connect((_, change) => {
      if (change.type === 'save' || change.type === 'delete') {
        void model.refresh();
      }
    });
    if (browser) {
      model.path = browser.model.path;
      browser.model.pathChanged.connect((_, change) => {
        model.path = change.newValue ?? '';
      });
      const bar = new QuotaBar(model, translator ?? undefined);
      (browser.layout as PanelLayout).addWidget(bar);
    }
    if (statusBar) {
      const item = new QuotaStatus(model, translator ?? undefined);
      statusBar.registerStatusItem(`${PLUGIN}:quota`, {
        item,
        align: 'left',
        rank: 3,
        isActive: () => model.loaded,
        activeStateChanged: model.stateChanged
      });
    }
  }
};

/** The product name shown in the UI ("CERNBox"), from the server's settings. */
function productName(cs3: ICS3Client): string {
  return cs3.server?.product_name || 'CS3';
}

const sync: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN}:sync`,
  description:
    'The sync status bar item, the Sync panel (pending, conflicted and failed operations) and the conflict banner on open documents.',
  autoStart: true,
  requires: [ICS3Client],
  optional: [
    IStatusBar,
    ILayoutRestorer,
    ITranslator,
    IDocumentManager,
    IDocumentWidgetOpener
  ],
  activate: (
    app: JupyterFrontEnd,
    cs3: ICS3Client,
    statusBar: IStatusBar | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null,
    docManager: IDocumentManager | null,
    opener: IDocumentWidgetOpener | null
  ) => {
    translator = translator ?? nullTranslator;
    const trans = translator.load('cs3sync');
    const product = productName(cs3);
    // The status item must stay current even while the panel is hidden.
    const model = new JournalModel({ cs3, standby: 'never' });
    const actions = new ConflictActions({
      client: cs3.client,
      docManager,
      contents: app.serviceManager.contents,
      trans,
      show: (widget, ref) =>
        app.shell.add(widget, 'main', { mode: 'split-right', ref })
    });
    const panel = new SyncPanel({ model, cs3, actions, translator, product });
    app.shell.add(panel, 'right', { rank: 900 });
    restorer?.add(panel, 'cs3sync-sync');
    const watcher = new ConflictWatcher({
      actions,
      trans,
      open: async entry => {
        if (entry.api_path !== null) {
          await cs3.open(entry.api_path, 'file');
        }
      }
    });
    opener?.opened.connect((_, widget) => watcher.track(widget));
    model.stateChanged.connect(() => {
      if (model.data) {
        watcher.update(model.data.entries);
      }
    });
    if (statusBar) {
      const item = new SyncStatus(
        model,
        () => app.shell.activateById(panel.id),
        translator,
        product
      );
      statusBar.registerStatusItem(`${PLUGIN}:sync`, {
        item,
        align: 'left',
        rank: 2
      });
    }
  }
};

const locking: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN}:locking`,
  description:
    'Holds a storage lock while a document is open and shows who else holds it.',
  autoStart: true,
  requires: [ICS3Client],
  optional: [IDocumentWidgetOpener, ITranslator],
  activate: async (
    app: JupyterFrontEnd,
    cs3: ICS3Client,
    opener: IDocumentWidgetOpener | null,
    translator: ITranslator | null
  ) => {
    if (!opener) {
      return;
    }
    let heartbeat = 60;
    try {
      const settings = await cs3.client.lockSettings();
      if (settings.enabled === false) {
        return; // the storage has no locks (lock_not_impl)
      }
      heartbeat = Math.max(10, settings.heartbeat ?? heartbeat);
    } catch {
      // Older servers: keep the default.
    }
    const sessions = new Map<string, LockSession>();
    opener.opened.connect((_, widget) => {
      if (sessions.has(widget.id)) {
        return;
      }
      const session = new LockSession(
        cs3.client,
        widget,
        heartbeat,
        translator ?? undefined
      );
      sessions.set(widget.id, session);
      widget.disposed.connect(() => sessions.delete(widget.id));
    });
  }
};

export default [core, spaces, shares, quota, sync, locking, merges];
