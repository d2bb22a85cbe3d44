// Copyright (c) cs3sync contributors. Apache-2.0.
import {
  Clipboard,
  Dialog,
  ReactWidget,
  showDialog
} from '@jupyterlab/apputils';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import * as React from 'react';

import { copyTarget } from './linkedit';
import { roleLabel } from './shares';
import { ICS3Client } from './tokens';
import { IGroup, ILink, IShare, IUser, Role } from './types';
import { formatDate } from './utils';

/** A user or group found by the search. */
export interface ICandidate {
  type: 'user' | 'group';
  id: string;
  idp: string;
  label: string;
  detail: string;
}

/** Merge user and group search results into one list of candidates. */
export function candidates(users: IUser[], groups: IGroup[]): ICandidate[] {
  return [
    ...users.map(user => ({
      type: 'user' as const,
      id: user.id,
      idp: user.idp,
      label: user.display_name || user.username,
      detail: user.mail || user.username
    })),
    ...groups.map(group => ({
      type: 'group' as const,
      id: group.id,
      idp: group.idp,
      label: group.display_name || group.name,
      detail: group.mail || group.name
    }))
  ];
}

interface IShareDialogProps {
  cs3: ICS3Client;
  path: string;
  trans: TranslationBundle;
}

/** The body of the "Share…" dialog. */
export function ShareDialogBody(props: IShareDialogProps): React.ReactElement {
  const { cs3, path, trans } = props;
  const client = cs3.client;
  const [query, setQuery] = React.useState('');
  const [found, setFound] = React.useState<ICandidate[]>([]);
  const [roles, setRoles] = React.useState<Record<string, Role>>({});
  const [grantees, setGrantees] = React.useState<IShare[] | null>(null);
  const [links, setLinks] = React.useState<ILink[] | null>(null);
  const [password, setPassword] = React.useState('');
  const [expiry, setExpiry] = React.useState('');
  const [error, setError] = React.useState<string | null>(null);
  const [searching, setSearching] = React.useState(false);

  const report = (reason: any) =>
    setError((reason as Error)?.message ?? String(reason));

  const reload = React.useCallback(async () => {
    try {
      const [shares, publicLinks] = await Promise.all([
        client.outgoingShares(path),
        client.links(path)
      ]);
      setGrantees(shares);
      setLinks(publicLinks);
    } catch (reason) {
      report(reason);
    }
  }, [path]);

  React.useEffect(() => {
    void reload();
  }, [reload]);

  // Search users and groups, debounced, from two characters on.
  React.useEffect(() => {
    if (query.trim().length < 2) {
      setFound([]);
      return;
    }
    let cancelled = false;
    const timer = setTimeout(async () => {
      setSearching(true);
      try {
        const [users, groups] = await Promise.all([
          client.findUsers(query.trim()),
          client.findGroups(query.trim())
        ]);
        if (!cancelled) {
          setFound(candidates(users, groups));
        }
      } catch (reason) {
        if (!cancelled) {
          report(reason);
        }
      } finally {
        if (!cancelled) {
          setSearching(false);
        }
      }
    }, 300);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [query]);

  const act = async (action: () => Promise<unknown>) => {
    setError(null);
    try {
      await action();
    } catch (reason) {
      report(reason);
    }
    await reload();
  };

  return (
    <div className="jp-cs3sync-shareDialog">
      {error ? (
        <div className="jp-cs3sync-error" role="alert">
          {error}
        </div>
      ) : null}
      <label className="jp-cs3sync-field">
        <span>{trans.__('Share with')}</span>
        <input
          className="jp-mod-styled jp-cs3sync-search"
          type="search"
          placeholder={trans.__('Name or e-mail')}
          title={trans.__(
            'Type at least 2 characters of a name, e-mail or group'
          )}
          value={query}
          onChange={event => setQuery(event.target.value)}
        />
      </label>
      {searching ? (
        <div className="jp-cs3sync-empty">{trans.__('Searching…')}</div>
      ) : query.trim().length >= 2 && found.length === 0 ? (
        <div className="jp-cs3sync-empty jp-cs3sync-noMatch">
          {trans.__('No one matches “%1”.', query.trim())}
        </div>
      ) : null}
      <ul className="jp-cs3sync-list jp-cs3sync-found">
        {found.map(candidate => {
          const key = candidate.type + candidate.id;
          const role = roles[key] ?? 'viewer';
          const existing = (grantees ?? []).find(
            share =>
              share.grantee?.id === candidate.id &&
              share.grantee?.type === candidate.type
          );
          return (
            <li
              key={key}
              className="jp-cs3sync-item"
              data-candidate={candidate.id}
            >
              <span className="jp-cs3sync-name">{candidate.label}</span>
              <span className="jp-cs3sync-detail">
                {candidate.type === 'group'
                  ? trans.__('group · %1', candidate.detail)
                  : candidate.detail}
              </span>
              {existing ? (
                <span className="jp-cs3sync-hasAccess">
                  {trans.__(
                    'has access as %1',
                    roleLabel(existing.role, trans)
                  )}
                </span>
              ) : (
                <>
                  <select
                    className="jp-mod-styled"
                    aria-label={trans.__('Role for %1', candidate.label)}
                    value={role}
                    onChange={event =>
                      setRoles({ ...roles, [key]: event.target.value as Role })
                    }
                  >
                    <option value="viewer">{trans.__('can view')}</option>
                    <option value="editor">{trans.__('can edit')}</option>
                  </select>
                  <button
                    className="jp-mod-styled jp-mod-accept jp-cs3sync-add"
                    onClick={() =>
                      act(async () => {
                        await client.createShare({
                          path,
                          grantee_type: candidate.type,
                          grantee_id: candidate.id,
                          grantee_idp: candidate.idp,
                          role
                        });
                        setQuery('');
                      })
                    }
                  >
                    {trans.__('Share')}
                  </button>
                </>
              )}
            </li>
          );
        })}
      </ul>
      <h3 className="jp-cs3sync-subtitle">{trans.__('Shared with')}</h3>
      {grantees === null ? (
        <div className="jp-cs3sync-empty">{trans.__('Loading…')}</div>
      ) : grantees.length === 0 ? (
        <div className="jp-cs3sync-empty">{trans.__('Nobody yet.')}</div>
      ) : (
        <ul className="jp-cs3sync-list jp-cs3sync-grantees">
          {grantees.map(share => (
            <li
              key={share.id}
              className="jp-cs3sync-item"
              data-share-id={share.id}
            >
              <span className="jp-cs3sync-name">
                {share.grantee?.display_name || share.grantee?.id}
              </span>
              <span className="jp-cs3sync-detail">
                {share.grantee?.type === 'group' ? trans.__('group') : ''}
              </span>
              <select
                className="jp-mod-styled"
                aria-label={trans.__('Role')}
                value={share.role}
                onChange={event =>
                  act(() =>
                    client.updateShare(share.id, event.target.value as Role)
                  )
                }
              >
                <option value="viewer">{trans.__('viewer')}</option>
                <option value="editor">{trans.__('editor')}</option>
                {share.role !== 'viewer' && share.role !== 'editor' ? (
                  <option value={share.role}>
                    {roleLabel(share.role, trans)}
                  </option>
                ) : null}
              </select>
              <button
                className="jp-mod-styled jp-mod-reject"
                onClick={() =>
                  confirmRemoval(
                    trans.__(
                      '%1 will no longer have access.',
                      share.grantee?.display_name || share.grantee?.id || ''
                    ),
                    trans
                  ).then(ok =>
                    ok ? act(() => client.removeShare(share.id)) : undefined
                  )
                }
              >
                {trans.__('Remove')}
              </button>
            </li>
          ))}
        </ul>
      )}
      <h3 className="jp-cs3sync-subtitle">{trans.__('Public links')}</h3>
      <div className="jp-cs3sync-row">
        <input
          className="jp-mod-styled"
          type="password"
          placeholder={trans.__('Password (optional)')}
          aria-label={trans.__('Link password')}
          value={password}
          onChange={event => setPassword(event.target.value)}
        />
        <input
          className="jp-mod-styled"
          type="date"
          aria-label={trans.__('Link expiry date')}
          value={expiry}
          onChange={event => setExpiry(event.target.value)}
        />
        <button
          className="jp-mod-styled jp-mod-accept jp-cs3sync-createLink"
          onClick={() =>
            act(async () => {
              await client.createLink({
                path,
                role: 'viewer',
                password: password || undefined,
                expiration: expiry
                  ? Math.floor(new Date(expiry + 'T23:59:59').getTime() / 1000)
                  : null
              });
              setPassword('');
              setExpiry('');
            })
          }
        >
          {trans.__('Create link')}
        </button>
      </div>
      {links && links.length > 0 ? (
        <ul className="jp-cs3sync-list jp-cs3sync-links">
          {links.map(link => (
            <li
              key={link.id}
              className="jp-cs3sync-item"
              data-link-id={link.id}
            >
              <span className="jp-cs3sync-name">
                {link.display_name || link.token}
              </span>
              <span className="jp-cs3sync-detail">
                {link.password_protected ? trans.__('password') + ' ' : ''}
                {link.expiration
                  ? trans.__('expires %1', formatDate(link.expiration))
                  : ''}
              </span>
              <button
                className="jp-mod-styled jp-cs3sync-copyLink"
                title={copyTarget(link, trans).title}
                onClick={() =>
                  Clipboard.copyToSystem(copyTarget(link, trans).text)
                }
              >
                {copyTarget(link, trans).label}
              </button>
              <button
                className="jp-mod-styled jp-mod-reject"
                onClick={() =>
                  confirmRemoval(
                    trans.__(
                      'People who have this link will no longer be able to open it.'
                    ),
                    trans
                  ).then(ok =>
                    ok ? act(() => client.removeLink(link.id)) : undefined
                  )
                }
              >
                {trans.__('Remove')}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** Ask before removing someone's access. */
async function confirmRemoval(
  body: string,
  trans: TranslationBundle
): Promise<boolean> {
  const result = await showDialog({
    title: trans.__('Remove access?'),
    body,
    buttons: [
      Dialog.cancelButton(),
      Dialog.warnButton({ label: trans.__('Remove') })
    ]
  });
  return result.button.accept;
}

/** Open the "Share…" dialog for an API path. */
export async function openShareDialog(options: {
  cs3: ICS3Client;
  path: string;
  name: string;
  translator?: ITranslator;
}): Promise<void> {
  const trans = (options.translator ?? nullTranslator).load('cs3sync');
  const body = ReactWidget.create(
    <ShareDialogBody cs3={options.cs3} path={options.path} trans={trans} />
  );
  await showDialog({
    title: trans.__('Share “%1”', options.name),
    body,
    // The first field, not the Close button: the dialog is for typing a name.
    focusNodeSelector: 'input',
    buttons: [Dialog.cancelButton({ label: trans.__('Close') })]
  });
}
